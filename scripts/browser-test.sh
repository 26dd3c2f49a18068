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

# The 客服 push is configured (安全模式), so the simulated user can write to 客服.
export BANZHENG_WECHAT__PUSH_TOKEN=browserPushToken
export BANZHENG_WECHAT__PUSH_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
start_dev_server
password="browser-test-password"
username="reviewer-$RANDOM$RANDOM"
dev_admin_add reviewer "$username" "$password"
support="support-$RANDOM$RANDOM"
dev_admin_add support "$support" "$password"
BZ_TEST_BASE_URL="$BASE_URL" BZ_TEST_REVIEWER="$username" BZ_TEST_REVIEWER_PASSWORD="$password" \
  BZ_TEST_SUPPORT="$support" BZ_TEST_SUPPORT_PASSWORD="$password" \
  node tests/js/browser-flow.mjs
