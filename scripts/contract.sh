#!/usr/bin/env bash
# The API contract: miniprogram-api-spec/openapi.yaml validates, and schemathesis (a tool
# nobody here wrote) finds the running server honours it over every operation.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_python_tools
"$PY_VENV/bin/openapi-spec-validator" miniprogram-api-spec/openapi.yaml

start_dev_server
export BZ_TEST_USER_TOKEN BZ_TEST_REVIEWER_TOKEN BZ_TEST_STAFF_TOKEN BZ_TEST_LOGOUT_TOKEN
BZ_TEST_USER_TOKEN=$(dev_user_token contract-user)
BZ_TEST_REVIEWER_TOKEN=$(dev_admin_token reviewer)
BZ_TEST_STAFF_TOKEN=$(dev_admin_token staff)
BZ_TEST_LOGOUT_TOKEN=$(dev_user_token contract-logout)

rm -rf tests/output/schemathesis && mkdir -p tests/output/schemathesis
"$PY_VENV/bin/schemathesis" --config-file miniprogram-api-spec/schemathesis.toml run \
  miniprogram-api-spec/openapi.yaml --url "$BASE_URL" \
  --report junit --report-dir tests/output/schemathesis --generation-database=none \
  "$@" | tee tests/output/schemathesis/run.log
echo "schemathesis: $(grep -E '^ +[0-9]+ generated' tests/output/schemathesis/run.log | sed 's/^ *//'), over $(grep -c '<testcase' tests/output/schemathesis/*.xml) operations"
