# Shared helpers for the scripts: logging and installing what the tests need.

# Each step says how far into the run it starts, so a slow CI shows where its time went.
step() { printf '\n==> %s (at %d s)\n' "$*" "$SECONDS"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# apt-get install, as root or through sudo; says exactly what is missing when it cannot.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "missing: $* (and no apt-get to install it with)"
  $sudo apt-get update -qq >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "missing: $* (apt-get install $* failed)"
}

# A redis-server on 127.0.0.1:6379 for the suite; started when none answers.
ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/banzheng-redis.log"
    for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p 6379 ping >/dev/null || die "redis-server did not start on 6379"
  fi
}

# A Python venv under target/ with the pinned test tools: the contract's (schemathesis) and
# a WeChat SDK nobody here wrote (wechatpy, with the AES it decrypts user data with).
PY_VENV="target/venv"
PY_TOOLS=('schemathesis==4.32.5' 'openapi-spec-validator==0.9.0' 'wechatpy==1.8.18' 'cryptography==50.0.2')
ensure_python_tools() {
  local frozen tool missing=""
  frozen=$("$PY_VENV/bin/pip" freeze 2>/dev/null || true)
  for tool in "${PY_TOOLS[@]}"; do
    grep -qix "$tool" <<<"$frozen" || missing=1
  done
  if [ -n "$missing" ]; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -m venv "$PY_VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$PY_VENV/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}" \
      || die "pip install of ${PY_TOOLS[*]} failed"
  fi
}

# Node.js and npm (the machine's own; Debian's packages otherwise).
ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
}

# Starts the server binary in development mode on a free port with a fresh data directory;
# sets BASE_URL and stops the server when the calling script exits.
start_dev_server() {
  local port data log
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  data=$(mktemp -d)
  log="$data/server.log"
  BANZHENG_BIND="127.0.0.1:$port" BANZHENG_DATA_DIR="$data" RUST_LOG=warn \
    "${SERVER_BIN:-target/debug/server}" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_DATA="$data"
  BASE_URL="http://127.0.0.1:$port"
  trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -rf "$SERVER_DATA"' EXIT
  for _ in $(seq 100); do
    curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$log" >&2
  die "the server did not become ready on $BASE_URL"
}

# A staff account on the dev server: ROLE NAME PASSWORD.
dev_admin_add() {
  local role=$1 name=$2 password=$3 halls=()
  # Staff work at halls: every hall here.
  [ "$role" = staff ] && halls=(--hall all)
  printf '%s\n' "$password" | BANZHENG_DATA_DIR="$SERVER_DATA" "${SERVER_BIN:-target/debug/server}" \
    admin add --username "$name" --role "$role" "${halls[@]}" --password-stdin >/dev/null
}

# A staff token of a new account with that role; prints it.
dev_admin_token() {
  local role=$1 name="$1-$RANDOM$RANDOM" password="contract-test-password"
  dev_admin_add "$role" "$name" "$password"
  curl -fsS -X POST "$BASE_URL/api/v1/admin/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$name\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# A user token through the WeChat simulator, as the mini-program gets one, whose user accepted
# the current privacy notice (as the mini-program asks before the first booking or order);
# prints it.
dev_user_token() {
  local openid=$1 code token version
  code=$(curl -fsS -X POST "$BASE_URL/__sim/codes" -H 'content-type: application/json' \
    -d "{\"openid\":\"$openid\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
  token=$(curl -fsS -X POST "$BASE_URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"code\":\"$code\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  version=$(curl -fsS "$BASE_URL/api/v1/me" -H "Authorization: Bearer $token" |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["privacy"]["version"]))')
  curl -fsS -o /dev/null -X POST "$BASE_URL/api/v1/me/consent" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d "{\"version\":$version}"
  printf '%s\n' "$token"
}

# Debian's Chromium for the browser tests (no browser download by test tools).
ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

# The shared test photographs: BANZHENG_PHOTOS_DIR, else ../shared/photos beside the
# repository, else /work/shared/photos. Exported for every suite.
export_photos_dir() {
  local dir
  for dir in "${BANZHENG_PHOTOS_DIR:-}" "$PWD/../shared/photos" /work/shared/photos; do
    if [ -n "$dir" ] && [ -f "$dir/labels.json" ]; then
      BANZHENG_PHOTOS_DIR=$(cd "$dir" && pwd)
      export BANZHENG_PHOTOS_DIR
      return 0
    fi
  done
  die "missing: the test photographs (set BANZHENG_PHOTOS_DIR to a folder with labels.json)"
}

# Runs suites at once, each given as a name and a command, each into its own log; when all have
# ended it prints every log in turn with its time and fails if any failed. A suite spends much of
# its time waiting (on a server, a browser, a sleep): side by side they keep both cores busy.
side_by_side() {
  local dir="target/side-by-side" i failed=0 started
  local -a names=() pids=()
  rm -rf "$dir" && mkdir -p "$dir"
  started=$(date +%s)
  while [ $# -gt 0 ]; do
    names+=("$1")
    # Each suite notes when it ended: they are waited for in order, not as they end.
    (set +e; eval "$2"; code=$?; date +%s >"$dir/${#names[@]}.end"; exit $code) >"$dir/${#names[@]}.log" 2>&1 &
    pids+=($!)
    shift 2
  done
  for i in "${!pids[@]}"; do
    local verdict="passed"
    wait "${pids[$i]}" || { verdict="FAILED"; failed=1; }
    printf '\n==> %s: %s in %d s\n' "${names[$i]}" "$verdict" "$(($(cat "$dir/$((i + 1)).end") - started))"
    cat "$dir/$((i + 1)).log"
  done
  [ "$failed" -eq 0 ] || die "a suite failed (its log is above)"
}

# Redis CPU seconds (user + system) and commands processed, summed over `ports`.
redis_counters() {
  local cpu=0 commands=0 port
  for port in "$@"; do
    cpu=$(redis-cli -p "$port" info cpu | awk -F: -v s="$cpu" '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.6f", s}')
    commands=$(redis-cli -p "$port" info stats | awk -F: -v s="$commands" '/^total_commands_processed:/ {s += $2} END {print s}')
  done
  echo "$cpu $commands"
}

# Waits (at most 60 s) until the Redis servers on `ports` (after the first argument) process
# fewer than `most` (the first) commands in half a second: the background work the measured run
# left is done, and only polls remain.
settle_redis() {
  local most=$1 last now
  shift
  last=$(redis_counters "$@" | cut -d' ' -f2)
  for _ in $(seq 120); do
    sleep 0.5
    now=$(redis_counters "$@" | cut -d' ' -f2)
    [ $((now - last)) -lt "$most" ] && return 0
    last=$now
  done
}

# A free TCP port on 127.0.0.1 for a process a script starts.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A scratch directory ($WORK) and a list for the processes a script starts in the background
# ($PIDS): both are gone when the script exits, however it exits.
scratch_and_cleanup() {
  WORK=$(mktemp -d)
  PIDS=()
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
}
