#!/usr/bin/env bash
# Benchmarks the photo checker (not part of the tests):
#   native vs WASM-in-Node for a 12 MP phone-size photo and a 1 MP one, their ratio, the .wasm
#   sizes, normalisation time for 12 MP, and OpenCV's Haar detector beside ours on the shared photos.
# Times are medians of per-call CPU time (wall time is printed too: on a busy shared machine it
# is inflated by other processes). Targets: native ≤ 60 ms at 12 MP, WASM ≤ 2× native,
# normalise ≤ 150 ms.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PHOTOS="${BANZHENG_PHOTOS_DIR:-$ROOT/../shared/photos}"
OUT="$TARGET_DIR/bench"
RUNS="${RUNS:-15}"
mkdir -p "$OUT"

echo "== native (release)" >&2
cargo build --release -p photo-wasm --example bench
native="$("$TARGET_DIR/release/examples/bench" "$PHOTOS" "$OUT" "$RUNS")"

if [[ ! -f "$TARGET_DIR/wasm-pkg/simd/nodejs/photo_wasm.js" ]]; then
  scripts/wasm.sh build >&2
fi
echo "== WASM in Node (baseline and SIMD builds)" >&2
wasm="$(node tests/js/bench-wasm.mjs "$TARGET_DIR/wasm-pkg/nodejs/photo_wasm.js" "$OUT" "$RUNS")"
simd="$(node tests/js/bench-wasm.mjs "$TARGET_DIR/wasm-pkg/simd/nodejs/photo_wasm.js" "$OUT" "$RUNS")"

echo "== OpenCV Haar cascade (opencv-python-headless<5, in $TARGET_DIR/bench-venv)" >&2
if [[ ! -x "$TARGET_DIR/bench-venv/bin/python" ]]; then
  python3 -m venv "$TARGET_DIR/bench-venv"
  "$TARGET_DIR/bench-venv/bin/pip" install -q "opencv-python-headless<5"
fi
# The native bench wrote our detections; add its median so one line compares both.
python3 - "$OUT/native-detections.json" "$native" <<'PY'
import json, sys
path, native = sys.argv[1], json.loads(sys.argv[2])
d = json.load(open(path))
d["median_cpu_ms"] = native["native_photos_median_cpu_ms"]
json.dump(d, open(path, "w"))
PY
opencv="$("$TARGET_DIR/bench-venv/bin/python" photo-wasm/benches/opencv_haar.py "$PHOTOS" "$OUT/native-detections.json")"

size() {
  node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    const br = require("zlib").brotliCompressSync(b).length;
    console.log(`${(b.length / 1024).toFixed(1)} KB raw, ${(br / 1024).toFixed(1)} KB brotli`);' "$1"
}

python3 - "$native" "$wasm" "$simd" "$opencv" <<'PY'
import json, sys
n, w, s = (json.loads(a) for a in sys.argv[1:4])
o = json.loads(sys.argv[4].strip().splitlines()[-1])
print("\nphoto-wasm benchmark (median CPU ms; wall ms in brackets)")
for size in ("12mp", "1mp"):
    nc = n[f"native_{size}_cpu_ms"]
    print(f"  check {size:>4}: native {nc:6.1f} ({n[f'native_{size}_wall_ms']:.1f})", end="")
    for label, r in (("wasm", w), ("wasm+simd", s)):
        c = r[f"wasm_{size}_cpu_ms"]
        print(f"   {label} {c:6.1f} ({r[f'wasm_{size}_wall_ms']:.1f}) x{c / nc:.2f}", end="")
    print()
print(f"  normalise 12mp: {n['normalise_12mp_cpu_ms']:.1f} ({n['normalise_12mp_wall_ms']:.1f})")
print(f"  review copy 12mp -> 2 MP: {n['review_copy_12mp_cpu_ms']:.1f} ({n['review_copy_12mp_wall_ms']:.1f})")
print(f"  OpenCV Haar: verdict {o['haar_verdict']}, median {o['haar_median_ms']} ms (read, decode, detect);"
      f" photo-wasm (BlazeFace): verdict {o['photo_wasm_verdict']}, median {o['photo_wasm_median_cpu_ms']} ms"
      f" (decode + detection + all checks); same faces on {o['agreement']} photos")
PY
echo "  .wasm with decoder: $(size "$TARGET_DIR/wasm-pkg/web/photo_wasm_bg.wasm")"
echo "  .wasm with decoder, SIMD: $(size "$TARGET_DIR/wasm-pkg/simd/web/photo_wasm_bg.wasm")"
if [[ -f "$TARGET_DIR/wasm-pkg/rgba/web/photo_wasm_bg.wasm" ]]; then
  echo "  .wasm RGBA only:    $(size "$TARGET_DIR/wasm-pkg/rgba/web/photo_wasm_bg.wasm")"
fi
