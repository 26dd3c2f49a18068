#!/usr/bin/env bash
# Redis's CPU per booking split in two: the booking request's (the server books with its
# notification worker off) and the notification worker's per notice (the same server restarted
# with its worker on, until it has settled every notice the bookings left; a start's own work
# is measured by a start without the worker and left out). The bookers accept no
# subscription, so a notice is claimed, its user read, its grant found missing and its outcome
# recorded: no send. Each round starts a fresh Redis of its own; the binaries given are
# measured in turn, ROUNDS times, so builds compare side by side. Redis's own counters, not
# wall time: the shared cores blur them less. Not part of the test command.
#   ROUNDS=3 DURATION=5s USERS=500 scripts/bench-notify-worker.sh before/server after/server
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
USERS=${USERS:-500}
[ $# -gt 0 ] || die "usage: scripts/bench-notify-worker.sh SERVER_BIN..."
command -v wrk >/dev/null || apt_install wrk
command -v redis-server >/dev/null || apt_install redis-server

scratch_and_cleanup

# Starts `bin` on the Redis at `redis_port` with the worker on or off; sets BASE_URL, APP_PID.
start_app() {
  local bin=$1 redis_port=$2 worker=$3 port
  port=$(free_port)
  BASE_URL="http://127.0.0.1:$port"
  mkdir -p "$WORK/app-$port"
  BANZHENG_REDIS_URL="redis://127.0.0.1:$redis_port/" BANZHENG_BIND="127.0.0.1:$port" \
    BANZHENG_DATA_DIR="$WORK/app-$port" BANZHENG_REDIS_KEY_PREFIX=bench RUST_LOG=error \
    BANZHENG_NOTIFY__WORKER="$worker" \
    BANZHENG_BOOKING__SLOT_CAPACITY=100000000 BANZHENG_BOOKING__MAX_ACTIVE_PER_USER=100000000 \
    BANZHENG_LOGIN__RATE_LIMIT=100000000 \
    "$bin" >"$WORK/app-$port/server.log" 2>&1 &
  APP_PID=$!
  PIDS+=("$APP_PID")
  for _ in $(seq 100); do curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "not ready: $BASE_URL"
}

stop_app() {
  kill "$APP_PID"
  wait "$APP_PID" 2>/dev/null || true
}

# Seats of the prepared slot taken so far.
booked() {
  curl -fsS "$BASE_URL/api/v1/offices/dongcheng/slots?service=expiry_renewal&date=$DAY" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["slots"][0]; print(s["capacity"]-s["remaining"])'
}

# To stderr: the commands Redis ran since its last RESETSTAT, calls and µs per `n` (per
# booking; `label` names the phase). Redis times a command by the clock, so a loaded machine
# inflates these µs; EVALSHA's include the commands its script ran.
commandstats() {
  redis-cli -p "$1" info commandstats | python3 -c '
import re, sys
label, n = sys.argv[1], max(int(sys.argv[2]), 1)
rows = []
for line in sys.stdin:
    m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line)
    if m:
        rows.append((int(m[3]) / n, int(m[2]) / n, m[1]))
rows.sort(reverse=True)
print(f"  [{label}] per unit:", ", ".join(f"{name} {calls:.2f}x {usec:.1f} us" for usec, calls, name in rows[:10]), file=sys.stderr)
' "$2" "$3"
}

# One round for `bin`: prints `bookings request_us notices_sent worker_us worker_commands`
# (the request's per booking, the worker's per notice it settled).
measure() {
  local bin=$1 redis_port redis_pid booking_cpu0 booking_cpu1 bookings worker_cpu0 worker_cpu1
  local commands0 commands1 settled startup_cpu0 startup_cpu1
  redis_port=$(free_port)
  mkdir -p "$WORK/redis-$redis_port"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/redis-$redis_port" --logfile "$WORK/redis-$redis_port/log" &
  redis_pid=$!
  PIDS+=("$redis_pid")
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

  start_app "$bin" "$redis_port" false
  read -r DAY SLOT < <(python3 - "$BASE_URL" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_api import first_bookable_slot
print(*first_bookable_slot(sys.argv[1]))
PY
  )
  BENCH_TOKENS="$WORK/tokens-$redis_port"
  python3 - "$BASE_URL" "$USERS" >"$BENCH_TOKENS" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_api import user_who_may_book
for n in range(int(sys.argv[2])):
    print(user_who_may_book(sys.argv[1], f"bench-user-{n}"))
PY
  export BENCH_TOKENS BENCH_SLOT="$SLOT"
  bookings=$(booked)
  redis-cli -p "$redis_port" config resetstat >/dev/null
  booking_cpu0=$(redis_counters "$redis_port" | cut -d" " -f1)
  wrk -t1 -c64 -d"$DURATION" -s scripts/bench-booking.lua "$BASE_URL/api/v1/appointments" >/dev/null
  booking_cpu1=$(redis_counters "$redis_port" | cut -d" " -f1)
  bookings=$(($(booked) - bookings))
  stop_app
  commandstats "$redis_port" "$bin request" "$bookings"

  # A start costs Redis work of its own (the layout migration's SCAN over every key): a
  # start without the worker measures it, and the worker's figure leaves it out.
  startup_cpu0=$(redis_counters "$redis_port" | cut -d" " -f1)
  start_app "$bin" "$redis_port" false
  stop_app
  startup_cpu1=$(redis_counters "$redis_port" | cut -d" " -f1)
  redis-cli -p "$redis_port" config resetstat >/dev/null
  read -r worker_cpu0 commands0 < <(redis_counters "$redis_port")
  start_app "$bin" "$redis_port" true
  # The worker has settled what was due and only polls.
  settle_redis 20 "$redis_port"
  read -r worker_cpu1 commands1 < <(redis_counters "$redis_port")
  stop_app
  commandstats "$redis_port" "$bin worker" "$bookings"
  # Notices the worker settled (sent or not): every outbox entry no longer pending.
  settled=$(redis-cli -p "$redis_port" --scan --pattern 'bench:*outbox:states' |
    while read -r key; do redis-cli -p "$redis_port" hvals "$key"; done | grep -vc '^pending$' || true)
  kill "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  python3 -c '
import sys
bookings, settled = (max(int(v), 1) for v in sys.argv[1:3])
b0, b1, w0, w1, c0, c1, s0, s1 = map(float, sys.argv[3:])
worker = (w1 - w0) - (s1 - s0)
print(bookings, f"{(b1 - b0) * 1e6 / bookings:.1f}", settled,
      f"{worker * 1e6 / settled:.1f}", f"{(c1 - c0) / settled:.1f}")
' "$bookings" "$settled" "$booking_cpu0" "$booking_cpu1" "$worker_cpu0" "$worker_cpu1" \
    "$commands0" "$commands1" "$startup_cpu0" "$startup_cpu1"
}

for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    read -r bookings request settled worker commands < <(measure "$bin")
    printf 'round %d  %-32s %6d bookings: request %6.1f us each; %6d notices settled: worker %6.1f us, %5.1f commands each\n' \
      "$round" "$bin" "$bookings" "$request" "$settled" "$worker" "$commands"
  done
done
