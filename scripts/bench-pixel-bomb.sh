#!/usr/bin/env bash
# Peak resident memory (VmHWM) of the server binary while one user posts a pixel bomb to
# POST /api/v1/photos/check N times at once (issue 15), once per bomb, each on a fresh server:
# the issue's 5760×5760 PNG of one colour (about 110 KB), and the largest PNG still decoded in
# full (4096×4096, inflating about 30-fold). Prints the answers' statuses and the peaks. Not part
# of the test command (`cargo test -p tests --test api budgets::` asserts the bound).
#   N=16 scripts/bench-pixel-bomb.sh
# SERVER_BIN=path measures that server binary (another build, main's to compare) instead of
# building target/debug/server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

N=${N:-16}
command -v curl >/dev/null || apt_install curl
if [ -z "${SERVER_BIN:-}" ]; then
  step "debug build"
  cargo build --quiet -p server --bin server
fi
BOMBS=$(mktemp -d)

# A grey PNG declaring SIDE×SIDE RGB pixels, one byte in NOISE random (0: none).
python3 - "$BOMBS" <<'PY'
import random, struct, sys, zlib
def bomb(side, noise, path):
    rnd, z, parts, pos = random.Random(15), zlib.compressobj(6), [], 0
    for _ in range(side):
        row = bytearray([200]) * (side * 3)
        if noise:
            for i in range((-pos) % noise, len(row), noise):
                row[i] = rnd.randrange(256)
            pos += len(row)
        parts.append(z.compress(b"\x00" + bytes(row)))
    data = b"".join(parts) + z.flush()
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
bomb(5760, 0, sys.argv[1] + "/bomb-5760.png")
bomb(4096, 80, sys.argv[1] + "/bomb-4096.png")
PY

peak() { awk '/VmHWM/ { printf "%d MiB", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

for bomb in "$BOMBS"/bomb-5760.png "$BOMBS"/bomb-4096.png; do
  step "$N × $(basename "$bomb") ($(stat -c %s "$bomb") bytes) at once"
  start_dev_server
  token=$(dev_user_token o-bomber)
  echo "at rest: $(peak)"
  pids=()
  for _ in $(seq "$N"); do
    curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $token" \
      -F "photo=@$bomb" -F spec=id-card "$BASE_URL/api/v1/photos/check" &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo
  echo "peak: $(peak); /healthz $(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/healthz")"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$SERVER_DATA"
done
rm -rf "$BOMBS"
