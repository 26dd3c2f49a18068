# Shared helpers for the scripts: logging and installing what the tests need.

step() { printf '\n==> %s\n' "$*"; }
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
