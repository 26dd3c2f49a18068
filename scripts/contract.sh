#!/usr/bin/env bash
# The API contract: miniprogram-api-spec/openapi.yaml validates, and schemathesis (a tool
# nobody here wrote) finds the running server honours it over every operation, twice:
#   1. our run (schemathesis.toml): a token of the right role for each operation, and only
#      the allowances a schema cannot express, each commented there;
#   2. the plain run a newcomer would try: one user token, `--checks all`, and the single
#      allowance of schemathesis-plain.toml (422 for a business rule's refusal).
# `scripts/contract.sh --plain …` runs only the second. Other arguments go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

runs=(ours plain)
if [ "${1:-}" = "--plain" ]; then
  runs=(plain)
  shift
fi

ensure_python_tools
"$PY_VENV/bin/openapi-spec-validator" miniprogram-api-spec/openapi.yaml

# The 客服 push endpoint exists only when configured: configure it (安全模式), so it is tested.
export BANZHENG_WECHAT__PUSH_TOKEN=contractPushToken
export BANZHENG_WECHAT__PUSH_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
start_dev_server
export BZ_TEST_USER_TOKEN BZ_TEST_REVIEWER_TOKEN BZ_TEST_STAFF_TOKEN BZ_TEST_SUPPORT_TOKEN BZ_TEST_ADMIN_TOKEN BZ_TEST_LOGOUT_TOKEN BZ_TEST_ERASE_TOKEN
BZ_TEST_USER_TOKEN=$(dev_user_token contract-user)
BZ_TEST_REVIEWER_TOKEN=$(dev_admin_token reviewer)
BZ_TEST_STAFF_TOKEN=$(dev_admin_token staff)
BZ_TEST_SUPPORT_TOKEN=$(dev_admin_token support)
BZ_TEST_ADMIN_TOKEN=$(dev_admin_token admin)
BZ_TEST_LOGOUT_TOKEN=$(dev_user_token contract-logout)
BZ_TEST_ERASE_TOKEN=$(dev_user_token contract-erase)

out=tests/output/schemathesis
rm -rf "$out" && mkdir -p "$out"
failed=()
for run in "${runs[@]}"; do
  step "schemathesis: $run run"
  mkdir -p "$out/$run"
  if [ "$run" = ours ]; then
    args=(--config-file miniprogram-api-spec/schemathesis.toml run)
  else
    # Without logout and erasure: either would revoke the run's one token on its first case, and
    # every later case would only show that a revoked token gets 401. (Our run gives each a
    # token of its own.)
    args=(--config-file miniprogram-api-spec/schemathesis-plain.toml run --checks all
      -H "Authorization: Bearer $(dev_user_token contract-plain)" --exclude-operation-id logout
      --exclude-operation-id eraseMe)
  fi
  "$PY_VENV/bin/schemathesis" "${args[@]}" miniprogram-api-spec/openapi.yaml --url "$BASE_URL" \
    --report junit --report-dir "$out/$run" --generation-database=none \
    "$@" | tee "$out/$run/run.log" || failed+=("$run")
  echo "schemathesis ($run run): $(grep -E "^ +Tested:" "$out/$run/run.log" | sed "s/^ *//") operations, $(grep -E "^ +[0-9]+ generated" "$out/$run/run.log" | sed "s/^ *//")"
done
[ ${#failed[@]} -eq 0 ] || die "schemathesis found failures in the ${failed[*]} run(s)"
