#!/usr/bin/env bash
# What Redis alone can do for bookings, with no server in front: redis-benchmark calls a script
# that does the least a booking must (bench-redis-floor.lua: 5 reads, 8 writes, values the size
# of ours) on fresh keys, and Redis's own CPU per call is read from /proc. It bounds
# scripts/bench-booking.sh (which runs it too): booking cannot go faster than this. Not part of
# the test command. REDIS_PORT: the Redis to load (6379); TAG: a hash tag every key carries (a
# cluster master's own, so the script's keys share its slot); Redis's CPU is read from its
# INFO cpu.
#   REQUESTS=200000 CLIENTS=64 REDIS_PORT=6379 TAG= scripts/bench-redis-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-64}
REDIS_PORT=${REDIS_PORT:-6379}
TAG=${TAG:-}
[ "$REDIS_PORT" != 6379 ] || ensure_redis
cli() { redis-cli -p "$REDIS_PORT" "$@"; }
PREFIX="floor$RANDOM$RANDOM"
R=$PREFIX:${TAG:+\{$TAG\}:}
trap 'cli --scan --pattern "$PREFIX:*" | xargs -r -n 5000 redis-cli -p "$REDIS_PORT" del >/dev/null' EXIT

SHA=$(cli script load "$(cat scripts/bench-redis-floor.lua)")
DOC=$(printf 'x%.0s' $(seq 600))  # a stored appointment is about 600 bytes of JSON
NOTICE=$(printf 'y%.0s' $(seq 400))
# Redis's own CPU seconds (user + system), from the server itself.
cpu() { cli info cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.6f", s}'; }
before=$(cpu)
rps=$(redis-benchmark -p "$REDIS_PORT" --csv -n "$REQUESTS" -c "$CLIENTS" -r 100000000 evalsha "$SHA" 9 \
  "${R}ban:__rand_int__" "${R}person:__rand_int__" "${R}user:__rand_int__" "${R}seats" \
  "${R}code:__rand_int__" "${R}appt:__rand_int__" "${R}user-all:__rand_int__" "${R}outbox" "${R}due" \
  1700000000000 0930 "id__rand_int__" "$DOC" "$NOTICE" | awk -F'","' 'NR == 2 {print $2}')
after=$(cpu)
python3 - "$rps" "$before" "$after" "$REQUESTS" <<'PY'
import sys
rps, before, after, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
us = (after - before) * 1e6 / n
print(f"least booking script, Redis alone   {rps:>10.0f} calls/s")
print(f"Redis CPU per call                  {us:>10.1f} us  (one core: at most {1e6 / us:.0f} bookings/s)")
PY
