#!/usr/bin/env bash
# Requests per second of GET …/slots and POST /api/v1/appointments (Redis backend) beside a
# bare actix-web JSON handler measured in the same run, and their ratios. Not part of the
# test command. Targets: slots ≥ 0.5 of bare, booking ≥ 0.8 of the ceiling: what Redis alone
# does with the least booking script (scripts/bench-redis-floor.sh). Bookings count only 201
# answers (appointments stored during the run). Redis's CPU per booking (its INFO cpu over the
# run and until the notification worker has sent the run's notices, per booking) is printed
# beside the ceiling script's: the shared cores cannot blur it; and the server's and wrk's CPU
# per booking, with the most bookings per second the machine's cores could carry at that cost.
# Then the same on a 3-master Redis Cluster the script starts: bookings/s beside the least
# script run on every master at once (each with keys of a slot it owns).
# Each Redis here is the script's own (AOF off, as ensure_redis starts the shared one).
#   DURATION=10s CONNECTIONS=64 THREADS=1 WORKERS=1 CLUSTER=1 scripts/bench-booking.sh
# SERVER_BIN=path measures that server binary (another build, to compare) instead of building;
# PROFILE=dev builds and measures the debug binaries (no release build: figures of the server
# are then a debug build's, Redis's CPU and commands per booking are not).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-1}
CLUSTER=${CLUSTER:-1}
PROFILE=${PROFILE:-release}
# Bookings come from this many users in turn, as in a rush of residents: one user holding
# every booking would make Redis grow that user's sets to 100,000s of entries, which the rule
# of 3 active appointments per user never allows.
USERS=${USERS:-2000}

command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
command -v redis-server >/dev/null || apt_install redis-server
case "$PROFILE" in
  release) BIN_DIR=target/release ;;
  dev) BIN_DIR=target/debug ;;
  *) die "PROFILE is release or dev" ;;
esac
step "$PROFILE build"
cargo build --profile "$PROFILE" --quiet -p server --bin bench-bare
if [ -z "${SERVER_BIN:-}" ]; then
  cargo build --profile "$PROFILE" --quiet -p server --bin server
  SERVER_BIN=$BIN_DIR/server
fi

# A cluster node also listens on its port + 10000 (the cluster bus): both must be free.
free_cluster_port() {
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port < 55535:
        try:
            socket.socket().bind(("127.0.0.1", port + 10000)); print(port); break
        except OSError:
            pass'
}
wait_ready() {
  for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "not ready: $1"
}

scratch_and_cleanup

# A redis-server of this script's on `port` (extra arguments: cluster mode).
start_redis() {
  local port=$1; shift
  mkdir -p "$WORK/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/redis-$port" --logfile "$WORK/redis-$port/log" "$@" &
  PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "redis-server did not start on $port"
}

# Calls per command name (INFO commandstats), summed over `ports`: `name calls` lines.
command_calls() {
  local port
  for port in "$@"; do
    redis-cli -p "$port" info commandstats | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p'
  done
}

# Starts the server over the store `store_vars` names (VAR=value …); sets BASE_URL.
start_app() {
  local port
  port=$(free_port)
  BASE_URL="http://127.0.0.1:$port"
  mkdir -p "$WORK/app-$port"
  env "$@" BANZHENG_BIND="127.0.0.1:$port" BANZHENG_DATA_DIR="$WORK/app-$port" \
    BANZHENG_REDIS_KEY_PREFIX="bench" BANZHENG_WORKERS="$WORKERS" RUST_LOG=error \
    BANZHENG_BOOKING__SLOT_CAPACITY=100000000 BANZHENG_BOOKING__MAX_ACTIVE_PER_USER=100000000 \
    BANZHENG_LOGIN__RATE_LIMIT=100000000 \
    "$SERVER_BIN" >"$WORK/app-$port/server.log" 2>&1 &
  APP_PID=$!
  PIDS+=("$APP_PID")
  wait_ready "$BASE_URL/readyz"
}

# The first day with slots at 东城 and its first slot (DAY, SLOT), and USERS users who
# accepted the privacy notice (their tokens in BENCH_TOKENS).
prepare_bookings() {
  read -r DAY SLOT < <(python3 - "$BASE_URL" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_api import first_bookable_slot
found = first_bookable_slot(sys.argv[1])
if found:
    print(*found)
PY
  )
  [ -n "${SLOT:-}" ] || die "no bookable day found"
  BENCH_TOKENS="$WORK/tokens-$RANDOM"
  python3 - "$BASE_URL" "$USERS" >"$BENCH_TOKENS" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_api import user_who_may_book
base, users = sys.argv[1], int(sys.argv[2])
for n in range(users):
    print(user_who_may_book(base, f"bench-user-{n}"))
PY
  export BENCH_TOKENS BENCH_SLOT="$SLOT"
}

# Seats of the prepared slot taken so far.
booked() {
  curl -fsS "$BASE_URL/api/v1/offices/dongcheng/slots?service=expiry_renewal&date=$DAY" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["slots"][0]; print(s["capacity"]-s["remaining"])'
}

rps() { awk '/^Requests\/sec:/ {print $2}'; }
# CPU seconds (user + system) a running process has used.
process_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}
# Runs wrk; prints its requests per second. wrk's own CPU seconds go to $WORK/wrk-cpu.
run() {
  local name=$1; shift
  local out
  # `times` in the same subshell as wrk: its second line is its children's, wrk's, CPU.
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@"; times >"$WORK/times")
  awk 'NR == 2 {split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2]}' \
    "$WORK/times" >"$WORK/wrk-cpu"
  printf '%s\n' "$out" | sed "s/^/  [$name] /" >&2
  printf '%s\n' "$out" | rps
}

# Books for DURATION against BASE_URL; prints the 201 answers per second, Redis CPU µs and
# commands per booking (over the Redis ports given), and the server's and wrk's CPU µs per
# booking (the server's until the worker has sent the run's notices, as Redis's).
bench_bookings() {
  local name=$1; shift
  local before_booked before after started ended server_before server_after
  before_booked=$(booked)
  before=$(redis_counters "$@")
  command_calls "$@" >"$WORK/calls-before"
  server_before=$(process_cpu "$APP_PID")
  started=$(date +%s.%N)
  run "$name" -s scripts/bench-booking.lua "$BASE_URL/api/v1/appointments" >/dev/null
  ended=$(date +%s.%N)
  # The notices of the run's bookings are sent after it too: Redis's counters are read once
  # the notification worker has caught up (Redis idle but for its polls), so a server whose
  # worker lags is not credited with work it left.
  settle_redis 100 "$@"
  after=$(redis_counters "$@")
  server_after=$(process_cpu "$APP_PID")
  command_calls "$@" >"$WORK/calls-after"
  # Which commands a booking costs (the request's and the background's: notices sent, …).
  python3 - "$WORK/calls-before" "$WORK/calls-after" "$before_booked" "$(booked)" "$name" >&2 <<'PY'
import collections, sys
def calls(path):
    c = collections.Counter()
    for line in open(path):
        name, n = line.split()
        c[name] += int(n)
    return c
delta = calls(sys.argv[2]) - calls(sys.argv[1])
bookings = max(int(sys.argv[4]) - int(sys.argv[3]), 1)
top = ", ".join(f"{name} {n / bookings:.2f}" for name, n in delta.most_common(12))
print(f"  [{sys.argv[5]}] Redis commands per booking: {top}")
PY
  python3 - "$before_booked" "$(booked)" "$started" "$ended" $before $after \
    "$server_before" "$server_after" "$(cat "$WORK/wrk-cpu")" <<'PY'
import sys
b0, b1, t0, t1, cpu0, n0, cpu1, n1, server0, server1, wrk = map(float, sys.argv[1:])
bookings = max(b1 - b0, 1)
print(f"{bookings / (t1 - t0):.0f} {(cpu1 - cpu0) * 1e6 / bookings:.1f} {(n1 - n0) / bookings:.1f} {int(b1 - b0)}"
      f" {(server1 - server0) * 1e6 / bookings:.1f} {wrk * 1e6 / bookings:.1f}")
PY
}

# One Redis.
REDIS_PORT=$(free_port)
start_redis "$REDIS_PORT"
BARE_PORT=$(free_port)
BENCH_BARE_BIND="127.0.0.1:$BARE_PORT" BENCH_BARE_WORKERS="$WORKERS" "$BIN_DIR/bench-bare" &
PIDS+=($!)
wait_ready "http://127.0.0.1:$BARE_PORT/"
start_app BANZHENG_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
prepare_bookings

step "bare actix-web JSON handler"
BARE=$(run bare "http://127.0.0.1:$BARE_PORT/")
step "GET /api/v1/offices/dongcheng/slots (Redis)"
SLOTS=$(run slots "$BASE_URL/api/v1/offices/dongcheng/slots?service=expiry_renewal&date=$DAY")
step "POST /api/v1/appointments (Redis, distinct applicants)"
read -r BOOK BOOK_CPU BOOK_COMMANDS BOOKED BOOK_SERVER_CPU BOOK_WRK_CPU < <(bench_bookings booking "$REDIS_PORT")
kill "$APP_PID"

step "Redis alone, the least booking script (scripts/bench-redis-floor.sh): the ceiling for booking"
FLOOR_OUT=$(REDIS_PORT=$REDIS_PORT scripts/bench-redis-floor.sh | tee /dev/stderr)
FLOOR=$(awk '/calls\/s/ {print $(NF-1)}' <<<"$FLOOR_OUT")
FLOOR_CPU=$(awk '/CPU per call/ {print $5}' <<<"$FLOOR_OUT")

CLUSTER_LINES=""
if [ "$CLUSTER" = 1 ]; then
  step "a 3-master Redis Cluster"
  CLUSTER_PORTS=()
  for _ in 1 2 3; do
    port=$(free_cluster_port)
    start_redis "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
      --cluster-node-timeout 1000
    CLUSTER_PORTS+=("$port")
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") \
    --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  start_app BANZHENG_REDIS_CLUSTER_NODES="$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")"
  prepare_bookings
  step "POST /api/v1/appointments (Redis Cluster, 3 masters)"
  read -r CBOOK CBOOK_CPU CBOOK_COMMANDS CBOOKED CBOOK_SERVER_CPU CBOOK_WRK_CPU < <(bench_bookings cluster-booking "${CLUSTER_PORTS[@]}")
  kill "$APP_PID"

  step "the least booking script on every master at once (keys of a slot each owns)"
  FLOORS=()
  for port in "${CLUSTER_PORTS[@]}"; do
    # A hash tag whose slot this master serves.
    tag=$(for n in $(seq 1000); do
      slot=$(redis-cli -p "$port" cluster keyslot "{m$n}")
      redis-cli -p "$port" cluster nodes | awk -v s="$slot" '/myself/ {
        for (i = 9; i <= NF; i++) { split($i, r, "-"); if (s >= r[1] && s <= (r[2] == "" ? r[1] : r[2])) found = 1 }
      } END { exit !found }' && { echo "m$n"; break; }
    done)
    REDIS_PORT=$port TAG=$tag scripts/bench-redis-floor.sh >"$WORK/floor-$port" &
    FLOORS+=($!)
  done
  wait "${FLOORS[@]}"
  cat "$WORK"/floor-* >&2
  CFLOOR=$(cat "$WORK"/floor-* | awk '/calls\/s/ {s += $(NF-1)} END {print s}')
  CFLOOR_CPU=$(cat "$WORK"/floor-* | awk '/CPU per call/ {s += $5; n++} END {printf "%.1f", s / n}')
  CLUSTER_LINES="$CBOOK $CBOOK_CPU $CBOOK_COMMANDS $CBOOKED $CFLOOR $CFLOOR_CPU $CBOOK_SERVER_CPU $CBOOK_WRK_CPU"
fi

step "results (wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS server worker(s), $USERS users, $(nproc) cores, $PROFILE build)"
python3 - "$BARE" "$SLOTS" "$BOOK" "$BOOKED" "$FLOOR" "$BOOK_CPU" "$BOOK_COMMANDS" "$FLOOR_CPU" \
  "$BOOK_SERVER_CPU" "$BOOK_WRK_CPU" "$(nproc)" $CLUSTER_LINES <<'PY'
import sys
bare, slots, book = map(float, sys.argv[1:4])
booked = int(sys.argv[4])
floor, cpu, commands, floor_cpu, server_cpu, wrk_cpu, cores = map(float, sys.argv[5:12])
print(f"bare JSON handler     {bare:>10.0f} req/s")
print(f"GET  slots            {slots:>10.0f} req/s   ratio {slots/bare:.2f}  (target >= 0.50)")
print(f"POST appointments     {book:>10.0f} req/s   ratio {book/bare:.2f}  (201 answers only)")
print(f"appointments stored   {booked:>10d}")
print(f"ceiling: Redis alone  {floor:>10.0f} calls/s ratio {floor/bare:.2f}  (the least booking script, no server)")
print(f"booking / ceiling     {book/floor:>10.2f}          (target >= 0.80)")
print(f"Redis CPU per booking {cpu:>10.1f} us      ceiling's script {floor_cpu:.1f} us per call; {commands:.1f} Redis commands per booking")
# What the machine's cores allow: the server and wrk share them with Redis, which the ceiling's
# redis-benchmark does not have to.
def cores_allow(label, server_cpu, wrk_cpu, redis_cpu, ceiling):
    whole = server_cpu + wrk_cpu + redis_cpu
    most = cores * 1e6 / whole
    print(f"{label}server {server_cpu:.1f} us + wrk {wrk_cpu:.1f} us + Redis {redis_cpu:.1f} us = {whole:.1f} us:"
          f" {cores:.0f} cores allow at most {most:.0f} bookings/s ({most / ceiling:.2f} of the ceiling)")
cores_allow("CPU per booking       ", server_cpu, wrk_cpu, cpu, floor)
if len(sys.argv) > 12:
    cbook, ccpu, ccommands, cbooked, cfloor, cfloor_cpu, cserver_cpu, cwrk_cpu = map(float, sys.argv[12:20])
    print(f"cluster (3 masters): POST appointments {cbook:>8.0f} req/s   {int(cbooked)} stored")
    print(f"cluster (3 masters): ceiling           {cfloor:>8.0f} calls/s (the least script on every master at once)")
    print(f"cluster (3 masters): booking / ceiling {cbook/cfloor:>8.2f}")
    print(f"cluster (3 masters): Redis CPU per booking {ccpu:.1f} us (all masters)   ceiling's script {cfloor_cpu:.1f} us per call; {ccommands:.1f} Redis commands per booking")
    cores_allow("cluster (3 masters): CPU per booking  ", cserver_cpu, cwrk_cpu, ccpu, cfloor)
PY
