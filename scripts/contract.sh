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

mkdir -p tests/output
"$PY_VENV/bin/schemathesis" --config-file miniprogram-api-spec/schemathesis.toml run \
  miniprogram-api-spec/openapi.yaml --url "$BASE_URL" \
  --report junit --report-dir tests/output/schemathesis \
  "$@"
python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
cases = failures = 0
for path in glob.glob("tests/output/schemathesis/*.xml"):
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        cases += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
print(f"schemathesis: {cases} operations reported, {failures} failed")
PY
