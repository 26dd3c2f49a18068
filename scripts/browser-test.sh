#!/usr/bin/env bash
# The web client's whole flow in Debian's headless Chromium, driven by playwright-core.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_node
ensure_chromium
export_photos_dir
(cd tests/js && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
[ -f target/wasm-pkg/web/photo_wasm_bg.wasm ] || scripts/wasm.sh build

start_dev_server
password="browser-test-password"
username="reviewer-$RANDOM$RANDOM"
printf '%s\n' "$password" | BANZHENG_DATA_DIR="$SERVER_DATA" "${SERVER_BIN:-target/debug/server}" \
  admin add --username "$username" --role reviewer --password-stdin >/dev/null
BZ_TEST_BASE_URL="$BASE_URL" BZ_TEST_REVIEWER="$username" BZ_TEST_REVIEWER_PASSWORD="$password" \
  node tests/js/browser-flow.mjs
