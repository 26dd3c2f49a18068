#!/usr/bin/env bash
# Builds and tests the photo checker's WebAssembly.
#   scripts/wasm.sh build   release .wasm for Node and the web (+ SIMD and RGBA-only builds, each
#                           baseline and SIMD), sizes
#   scripts/wasm.sh test    build if stale, then the same reports natively, in Node and in Chromium
#                           (PHOTO_CHECK_BIN and FINISH_FIXTURES_BIN name native builds to use)
#   scripts/wasm.sh tools   install what the two above need
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/lib.sh
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PKG="$TARGET_DIR/wasm-pkg"
JS="$ROOT/tests/js"
PHOTOS="${BANZHENG_PHOTOS_DIR:-$ROOT/../shared/photos}"
# Portraits in front of ordinary backgrounds, for the finished photo.
PHOTOS_BG="${BANZHENG_PHOTOS_BG_DIR:-$PHOTOS/../photos-bg}"
WASM_OUT="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/photo_wasm.wasm"
# Keep the target_features section for wasm-bindgen (the profile strips everything); wasm-opt
# strips it afterwards.
export CARGO_PROFILE_WASM_RELEASE_STRIP=debuginfo
# Features the Rust wasm32 target emits; wasm-opt must accept them and add no others.
WASM_FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue)

log() { printf '\n== %s\n' "$*" >&2; }

ensure_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_bindgen() {
  local want have
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
  [[ -n "$want" ]] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [[ "$have" != "$want" ]]; then
    log "installing wasm-bindgen-cli $want (found '${have:-none}'; takes a few minutes)"
    # --locked can fail when the CLI's own lock pins a crate the registry index lacks.
    cargo install wasm-bindgen-cli --version "$want" --locked ||
      cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_node_modules() {
  if [[ ! -x "$JS/node_modules/.bin/wasm-opt" || "$JS/package-lock.json" -nt "$JS/node_modules/.package-lock.json" ]]; then
    log "npm ci in tests/js"
    (cd "$JS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}

sizes() { # label file
  node -e '
    const fs = require("fs"), zlib = require("zlib");
    const b = fs.readFileSync(process.argv[2]);
    const br = zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } });
    console.log(`${process.argv[1].padEnd(28)} ${(b.length / 1024).toFixed(1).padStart(7)} KB raw  ${(br.length / 1024).toFixed(1).padStart(7)} KB brotli`);
  ' "$1" "$2"
}

# wasm-bindgen for each target, then wasm-opt -Oz. EXTRA_FEATURES adds wasm-opt feature flags.
# The models the builds take at run time (load_model) go beside each build, where loaders look.
bindgen_opt() { # wasm out_dir target...
  local wasm="$1" dir="$2"; shift 2
  for t in "$@"; do
    rm -rf "$dir/$t"
    wasm-bindgen "$wasm" --out-dir "$dir/$t" --out-name photo_wasm --target "$t"
    "$JS/node_modules/.bin/wasm-opt" -Oz "${WASM_FEATURES[@]}" ${EXTRA_FEATURES:-} --strip-debug --strip-producers \
      --strip-target-features "$dir/$t/photo_wasm_bg.wasm" -o "$dir/$t/photo_wasm_bg.wasm"
    cp photo-wasm/models/face_landmark.bin photo-wasm/models/selfie_segmentation.bin "$dir/$t/"
  done
}

build() {
  ensure_target
  ensure_bindgen
  ensure_node_modules
  mkdir -p "$PKG"
  log "cargo build (wasm-release, with the JPEG/PNG decoder)"
  cargo build -p photo-wasm --lib --target wasm32-unknown-unknown --profile wasm-release
  cp "$WASM_OUT" "$PKG/photo_wasm.wasm"
  bindgen_opt "$PKG/photo_wasm.wasm" "$PKG" nodejs web

  log "cargo build (wasm-release, RGBA only: --no-default-features)"
  cargo build -p photo-wasm --lib --target wasm32-unknown-unknown --profile wasm-release --no-default-features
  cp "$WASM_OUT" "$PKG/photo_wasm_rgba.wasm"
  mkdir -p "$PKG/rgba"
  bindgen_opt "$PKG/photo_wasm_rgba.wasm" "$PKG/rgba" web

  # Wasm SIMD (V8 and JavaScriptCore have it; older runtimes do not): a browser loader picks this
  # build when `WebAssembly.validate` accepts SIMD; the mini-program's loader tries to instantiate
  # it and falls back to the baseline. Its own target dir, as the flags change every crate.
  local simd_out="$TARGET_DIR/wasm-simd/wasm32-unknown-unknown/wasm-release/photo_wasm.wasm"
  log "cargo build (wasm-release, with the decoder, +simd128)"
  RUSTFLAGS="-C target-feature=+simd128" cargo build -p photo-wasm --lib --target wasm32-unknown-unknown \
    --profile wasm-release --target-dir "$TARGET_DIR/wasm-simd"
  cp "$simd_out" "$PKG/photo_wasm_simd.wasm"
  mkdir -p "$PKG/simd"
  EXTRA_FEATURES=--enable-simd bindgen_opt "$PKG/photo_wasm_simd.wasm" "$PKG/simd" nodejs web

  # What the mini-program ships first: RGBA only, SIMD (the baseline RGBA build is its fallback).
  log "cargo build (wasm-release, RGBA only, +simd128)"
  RUSTFLAGS="-C target-feature=+simd128" cargo build -p photo-wasm --lib --target wasm32-unknown-unknown \
    --profile wasm-release --target-dir "$TARGET_DIR/wasm-simd" --no-default-features
  cp "$simd_out" "$PKG/photo_wasm_rgba_simd.wasm"
  mkdir -p "$PKG/rgba-simd"
  EXTRA_FEATURES=--enable-simd bindgen_opt "$PKG/photo_wasm_rgba_simd.wasm" "$PKG/rgba-simd" web

  log "sizes (after wasm-bindgen and wasm-opt -Oz)"
  sizes "with decoder (web)" "$PKG/web/photo_wasm_bg.wasm"
  sizes "with decoder, SIMD (web)" "$PKG/simd/web/photo_wasm_bg.wasm"
  sizes "RGBA only (web)" "$PKG/rgba/web/photo_wasm_bg.wasm"
  sizes "RGBA only, SIMD (web)" "$PKG/rgba-simd/web/photo_wasm_bg.wasm"
  sizes "face landmark model (once)" photo-wasm/models/face_landmark.bin
  sizes "segmentation model (once)" photo-wasm/models/selfie_segmentation.bin
}

# True when the packaged wasm is older than any input of the build.
stale() {
  local out="$PKG/web/photo_wasm_bg.wasm"
  local f
  for f in "$out" "$PKG/simd/nodejs/photo_wasm_bg.wasm" "$PKG/rgba/web/photo_wasm_bg.wasm" \
    "$PKG/rgba-simd/web/photo_wasm_bg.wasm"; do
    [[ -f "$f" ]] || return 0
  done
  [[ -n "$(find photo-wasm/src photo-wasm/models photo-wasm/Cargo.toml photo-wasm/vendor Cargo.toml Cargo.lock -newer "$out" -print -quit)" ]]
}

run_tests() {
  if stale; then build; else ensure_node_modules; fi
  [[ -d "$PHOTOS" ]] || { echo "no photos at $PHOTOS (set BANZHENG_PHOTOS_DIR)" >&2; exit 1; }

  log "native reports (photo-check --json)"
  # --workspace: the features the tests were built with, so nothing is compiled twice.
  local photo_check="${PHOTO_CHECK_BIN:-}" finish_fixtures="${FINISH_FIXTURES_BIN:-}"
  if [[ -z "$photo_check" || -z "$finish_fixtures" ]]; then
    cargo build --workspace --bin photo-check --example finish_fixtures
    photo_check="$TARGET_DIR/debug/photo-check" finish_fixtures="$TARGET_DIR/debug/examples/finish_fixtures"
  fi
  local native="$PKG/native"
  rm -rf "$native" && mkdir -p "$native"
  local f name
  for f in "$PHOTOS"/*.jpg "$PHOTOS"/*.png; do
    [[ -f "$f" ]] || continue
    name="$(basename "$f")"
    # Exit 1 only means the photo fails a check; 2 is a real error.
    "$photo_check" "$f" --json >"$native/$name.json" || [[ $? == 1 ]]
  done

  log "Node: the nodejs builds give the same reports"
  node "$JS/wasm-same-report.mjs" "$PKG/nodejs/photo_wasm.js" "$PHOTOS" "$native"
  node "$JS/wasm-same-report.mjs" "$PKG/simd/nodejs/photo_wasm.js" "$PHOTOS" "$native"

  log "Node: finish_rgba gives the native document photo, byte for byte, in every build"
  local finish="$PKG/finish-fixtures"
  rm -rf "$finish"
  "$finish_fixtures" "$PHOTOS_BG" "$finish"
  local pkg_js
  for pkg_js in nodejs/photo_wasm.js simd/nodejs/photo_wasm.js rgba/web/photo_wasm.js rgba-simd/web/photo_wasm.js; do
    node "$JS/wasm-same-finish.mjs" "$PKG/$pkg_js" "$finish"
  done

  log "Chromium: the web build gives the same reports"
  ensure_chromium
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 node "$JS/wasm-chromium.mjs" "$PKG" "$PHOTOS" "$native" "$finish"
}

case "${1:-}" in
  tools) ensure_target && ensure_bindgen && ensure_node_modules && ensure_chromium ;;
  build) build ;;
  test) run_tests ;;
  *) echo "usage: $0 build|test|tools" >&2; exit 2 ;;
esac
