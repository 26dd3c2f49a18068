#!/usr/bin/env bash
# Requests per second of GET …/slots and POST /api/v1/appointments (Redis backend) beside a
# bare actix-web JSON handler measured in the same run, and their ratios. Not part of the
# test command. Targets: slots ≥ 0.5 of bare, booking ≥ 0.2. Last, the ceiling: what Redis alone
# does with the least booking script (scripts/bench-redis-floor.sh), as a ratio to the same bare.
#   DURATION=10s CONNECTIONS=64 THREADS=1 WORKERS=1 scripts/bench-booking.sh
# SERVER_BIN=path measures that server binary (another build, to compare) instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-1}
# Bookings come from this many users in turn, as in a rush of residents: one user holding
# every booking would make Redis grow that user's sets to 100,000s of entries, which the rule
# of 3 active appointments per user never allows.
USERS=${USERS:-2000}

command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
ensure_redis
step "release build"
cargo build --release --quiet -p server --bin bench-bare
if [ -z "${SERVER_BIN:-}" ]; then
  cargo build --release --quiet -p server --bin server
  SERVER_BIN=target/release/server
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
  for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "not ready: $1"
}

PREFIX="bench$RANDOM$RANDOM"
SERVER_DATA=$(mktemp -d)
BARE_PORT=$(free_port)
PORT=$(free_port)
BASE_URL="http://127.0.0.1:$PORT"
cleanup() {
  kill "${BARE_PID:-}" "${APP_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  redis-cli -p 6379 --scan --pattern "$PREFIX:*" | xargs -r -n 500 redis-cli -p 6379 del >/dev/null
  rm -rf "$SERVER_DATA"
}
trap cleanup EXIT

BENCH_BARE_BIND="127.0.0.1:$BARE_PORT" BENCH_BARE_WORKERS="$WORKERS" target/release/bench-bare &
BARE_PID=$!
BANZHENG_BIND="127.0.0.1:$PORT" BANZHENG_DATA_DIR="$SERVER_DATA" \
  BANZHENG_REDIS_URL=redis://127.0.0.1:6379/ BANZHENG_REDIS_KEY_PREFIX="$PREFIX" \
  BANZHENG_WORKERS="$WORKERS" RUST_LOG=error \
  BANZHENG_BOOKING__SLOT_CAPACITY=100000000 BANZHENG_BOOKING__MAX_ACTIVE_PER_USER=100000000 \
  BANZHENG_LOGIN__RATE_LIMIT=100000000 \
  "$SERVER_BIN" >"$SERVER_DATA/server.log" 2>&1 &
APP_PID=$!
wait_ready "http://127.0.0.1:$BARE_PORT/"
wait_ready "$BASE_URL/readyz"

# The first day with slots at 东城, and its first slot.
read -r DAY SLOT < <(python3 - "$BASE_URL" <<'PY'
import datetime, json, sys, urllib.request
base = sys.argv[1]
day = datetime.date.today()
for _ in range(14):
    day += datetime.timedelta(days=1)
    url = f"{base}/api/v1/offices/dongcheng/slots?service=expiry_renewal&date={day}"
    slots = json.load(urllib.request.urlopen(url))["slots"]
    if slots and not slots[0]["family_only"]:
        print(day, slots[0]["id"])
        break
PY
)
[ -n "${SLOT:-}" ] || die "no bookable day found"
BENCH_TOKENS="$SERVER_DATA/tokens"
python3 - "$BASE_URL" "$USERS" >"$BENCH_TOKENS" <<'PY'
import json, sys, urllib.request
base, users = sys.argv[1], int(sys.argv[2])
def call(path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    return json.load(urllib.request.urlopen(urllib.request.Request(base + path, data, headers)))
for n in range(users):
    code = call("/__sim/codes", {"openid": f"bench-user-{n}"})["code"]
    token = call("/api/v1/auth/login", {"code": code})["token"]
    # Booking stores an ID number: the user accepts the privacy notice first.
    version = call("/api/v1/me", token=token)["privacy"]["version"]
    call("/api/v1/me/consent", {"version": version}, token)
    print(token)
PY
export BENCH_TOKENS BENCH_SLOT="$SLOT"

rps() { awk '/^Requests\/sec:/ {print $2}'; }
run() {
  local name=$1; shift
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@")
  printf '%s\n' "$out" | sed "s/^/  [$name] /" >&2
  printf '%s\n' "$out" | rps
}

step "bare actix-web JSON handler"
BARE=$(run bare "http://127.0.0.1:$BARE_PORT/")
step "GET /api/v1/offices/dongcheng/slots (Redis)"
SLOTS=$(run slots "$BASE_URL/api/v1/offices/dongcheng/slots?service=expiry_renewal&date=$DAY")
step "POST /api/v1/appointments (Redis, distinct applicants)"
BOOK=$(run booking -s scripts/bench-booking.lua "$BASE_URL/api/v1/appointments")
BOOKED=$(curl -fsS "$BASE_URL/api/v1/offices/dongcheng/slots?service=expiry_renewal&date=$DAY" |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["slots"][0]; print(s["capacity"]-s["remaining"])')

step "Redis alone, the least booking script (scripts/bench-redis-floor.sh): the ceiling for booking"
FLOOR=$(scripts/bench-redis-floor.sh | tee /dev/stderr | awk '/calls\/s/ {print $(NF-1)}')

step "results (wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS server worker(s), $USERS users, $(nproc) cores)"
python3 - "$BARE" "$SLOTS" "$BOOK" "$BOOKED" "$FLOOR" <<'PY'
import sys
bare, slots, book = map(float, sys.argv[1:4])
floor = float(sys.argv[5])
print(f"bare JSON handler     {bare:>10.0f} req/s")
print(f"GET  slots            {slots:>10.0f} req/s   ratio {slots/bare:.2f}  (target >= 0.50)")
print(f"POST appointments     {book:>10.0f} req/s   ratio {book/bare:.2f}  (target >= 0.20)")
print(f"appointments stored   {int(sys.argv[4]):>10d}")
print(f"ceiling: Redis alone  {floor:>10.0f} calls/s ratio {floor/bare:.2f}  (the least booking script, no server)")
PY
