#!/usr/bin/env bash
# Redis's CPU per call of the booking script alone, beside the least booking script
# (bench-redis-floor.sh): where a booking's Redis CPU goes without the server, the worker or
# the shared cores' scheduling in the figure. The script starts a Redis and the server of its
# own, books once while MONITOR records what Redis was sent, and replays that booking's plan
# (its compiled script and its exact keys and arguments) with redis-benchmark, a fresh
# appointment, code, applicant and notices on every call (the account stays: its consent is a
# guard). The server runs with limits no replay reaches. Then the least script on the same
# Redis, alternating, ROUNDS times. Not part of the test command.
# CALLGRIND=N also counts Redis's own instructions per call of the plan over N calls (a Redis
# of its own under valgrind's callgrind): a figure no load on the shared cores moves; and the
# `redis.call`s the plan makes per call, from that Redis's INFO commandstats.
#   ROUNDS=3 REQUESTS=60000 CLIENTS=64 SERVER_BIN=target/release/server scripts/bench-booking-script.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-60000}
CLIENTS=${CLIENTS:-64}
command -v redis-server >/dev/null || apt_install redis-server
if [ -z "${SERVER_BIN:-}" ]; then
  cargo build --release --quiet -p server --bin server
  SERVER_BIN=target/release/server
fi

scratch_and_cleanup

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
APP_PORT=$(free_port)
BIG=1000000000
BANZHENG_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" BANZHENG_BIND="127.0.0.1:$APP_PORT" \
  BANZHENG_DATA_DIR="$WORK" BANZHENG_REDIS_KEY_PREFIX=bench RUST_LOG=error \
  BANZHENG_BOOKING__SLOT_CAPACITY=$BIG BANZHENG_BOOKING__MAX_ACTIVE_PER_USER=$BIG \
  BANZHENG_BOOKING__ATTEMPTS_PER_ACCOUNT=$BIG BANZHENG_BOOKING__ATTEMPTS_PER_APPLICANT=$BIG \
  "$SERVER_BIN" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$APP_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

# One booking, recorded.
redis-cli -p "$REDIS_PORT" monitor >"$WORK/monitor" &
MONITOR=$!
PIDS+=("$MONITOR")
sleep 0.3
python3 - "http://127.0.0.1:$APP_PORT" >"$WORK/booked.json" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from bench_api import call, first_bookable_slot, user_who_may_book
base = sys.argv[1]
_, slot = first_bookable_slot(base)
token = user_who_may_book(base, "bench-script-user")
applicant = {"name": "张三", "id_number": "110101199003074514", "phone": "13812345678"}
body = {"slot_id": slot, "service": "expiry_renewal", "applicant": applicant}
print(json.dumps(call(base, "/api/v1/appointments", body, token)))
PY
sleep 0.3
kill "$MONITOR"

# The plan's script and its call, with every id of this booking made fresh per call.
python3 - "$WORK" <<'PY'
import hashlib, json, re, sys
work = sys.argv[1]
booked = json.load(open(f"{work}/booked.json"))
def words(line):
    # MONITOR prints each argument quoted, C-escaped.
    out, i, rest = [], 0, line.split("] ", 1)[1]
    while i < len(rest):
        if rest[i] != '"':
            i += 1
            continue
        j, buf = i + 1, bytearray()
        while rest[j] != '"':
            if rest[j] == "\\":
                c = rest[j + 1]
                if c == "x":
                    buf.append(int(rest[j + 2:j + 4], 16))
                    j += 4
                    continue
                buf += {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b"}.get(c, c.encode())
                j += 2
                continue
            buf += rest[j].encode()
            j += 1
        out.append(bytes(buf).decode())
        i = j + 1
    return out
loaded, call = {}, None
for line in open(f"{work}/monitor"):
    if '"SCRIPT" "LOAD"' in line:
        text = words(line)[2]
        loaded[hashlib.sha1(text.encode()).hexdigest()] = text
    if '"EVALSHA"' in line and booked["id"] in line and "booking-user" in line:
        call = words(line)
# The booking's plan compiled: the script its call names.
script = call and loaded.get(call[1])
if not script:
    sys.exit("the booking's plan was not recorded")
user = re.search(r"\{booking-user:([0-9a-f]+)\}", " ".join(call)).group(1)
fresh = {booked["id"]: "a__rand_int__", booked["code"]: "c__rand_int__"}
for found in re.findall(r"applicant:([^:]+):", " ".join(call)):
    fresh[found] = "h__rand_int__"
# The notices' ids (any other 32-hex id but the account's).
for found in set(re.findall(r"\b[0-9a-f]{32}\b", " ".join(call))) - {user} - set(fresh):
    fresh[found] = "n__rand_int__"
def renew(text):
    for old, new in fresh.items():
        text = text.replace(old, new)
    return text
open(f"{work}/plan.lua", "w").write(script)
json.dump([renew(a) for a in call[2:]], open(f"{work}/call.json", "w"))
PY

cpu() { redis-cli -p "$REDIS_PORT" info cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.6f", s}'; }
SHA=$(redis-cli -p "$REDIS_PORT" script load "$(cat "$WORK/plan.lua")")
mapfile -t CALL < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))))' "$WORK/call.json")
[ "$(redis-cli -p "$REDIS_PORT" evalsha "$SHA" "${CALL[@]//__rand_int__/check}" | head -1)" = DONE ] ||
  die "the replayed plan does not book"
for round in $(seq "$ROUNDS"); do
  before=$(cpu)
  redis-benchmark -p "$REDIS_PORT" -q -n "$REQUESTS" -c "$CLIENTS" -r 100000000 evalsha "$SHA" "${CALL[@]}" >/dev/null
  after=$(cpu)
  python3 -c 'import sys; b, a, n = map(float, sys.argv[1:]); print(f"booking plan, Redis alone          Redis CPU per call {(a - b) * 1e6 / n:6.1f} us  (round '"$round"')")' \
    "$before" "$after" "$REQUESTS"
  REDIS_PORT=$REDIS_PORT REQUESTS=$REQUESTS CLIENTS=$CLIENTS scripts/bench-redis-floor.sh |
    sed -n "s/^Redis CPU per call *\([0-9.]*\) us.*/least booking script              Redis CPU per call \1 us  (round $round)/p"
done

if [ "${CALLGRIND:-0}" -gt 0 ]; then
  command -v valgrind >/dev/null || apt_install valgrind
  port=$(free_port)
  mkdir -p "$WORK/callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind/out.%p" redis-server \
    --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/callgrind" \
    >"$WORK/callgrind/log" 2>&1 &
  GRIND=$!
  PIDS+=("$GRIND")
  for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  # The account's record (its consent is a guard).
  for key in "${CALL[@]}"; do
    case "$key" in *"{user:"*) redis-cli -p "$REDIS_PORT" migrate 127.0.0.1 "$port" "$key" 0 60000 COPY >/dev/null ;; esac
  done
  GRIND_SHA=$(redis-cli -p "$port" script load "$(cat "$WORK/plan.lua")")
  # Warm (the script compiled, the first keys made), then count CALLGRIND calls alone.
  redis-benchmark -p "$port" -q -n 200 -c 8 -r 100000000 evalsha "$GRIND_SHA" "${CALL[@]}" >/dev/null
  # The commands the script makes (`redis.call`s): every command Redis counted but the calls.
  inner() { redis-cli -p "$port" info commandstats |
    awk -F'[_:=,]' '/^cmdstat_/ && $2 != "evalsha" && $2 != "info" {s += $4} END {print s}'; }
  inner_before=$(inner)
  callgrind_control -z "$GRIND" >/dev/null 2>&1
  redis-benchmark -p "$port" -q -n "$CALLGRIND" -c 8 -r 100000000 evalsha "$GRIND_SHA" "${CALL[@]}" >/dev/null
  callgrind_control -d "$GRIND" >/dev/null 2>&1
  inner_after=$(inner)
  awk -v n="$CALLGRIND" '/^summary:/ {s += $2} END {printf "booking plan, Redis alone          Redis instructions per call %.0f (callgrind, %d calls)\n", s / n, n}' \
    "$WORK"/callgrind/out.*.1
  awk -v b="$inner_before" -v a="$inner_after" -v n="$CALLGRIND" \
    'BEGIN {printf "booking plan, Redis alone          redis.calls per call %.1f\n", (a - b) / n}'
fi
