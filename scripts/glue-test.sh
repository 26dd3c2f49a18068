#!/usr/bin/env bash
# The mini-program glue: type-checked against the official miniprogram-api-typings, packaged
# for WXWebAssembly, and tested in Node with a fake wx against a running development server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_node
export_photos_dir
(cd miniprogram-api-spec && npm ci --no-audit --no-fund --loglevel=error)
(cd miniprogram-api-spec && npx --no-install tsc -p tsconfig.json)

# The phone gets pixels from a canvas: it ships the builds without the image decoder, with wasm
# SIMD and the baseline (for runtimes that refuse SIMD).
[ -f target/wasm-pkg/rgba/web/photo_wasm_bg.wasm ] && [ -f target/wasm-pkg/rgba-simd/web/photo_wasm_bg.wasm ] ||
  scripts/wasm.sh build
node miniprogram-api-spec/miniprogram/build-wasm.mjs target/wasm-pkg/rgba/web target/wasm-pkg/rgba-simd/web \
  target/miniprogram-photo photo-wasm/models/face_landmark.bin photo-wasm/models/selfie_segmentation.bin

start_dev_server
BZ_TEST_BASE_URL="$BASE_URL" BZ_TEST_MINIPROGRAM_WASM="$PWD/target/miniprogram-photo" \
  node --test miniprogram-api-spec/miniprogram/test/api.test.js
