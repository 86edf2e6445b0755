# shellcheck shell=bash
# A throwaway PostgreSQL for the test suites and benchmarks: Debian's `postgresql`
# package (installed on demand through ferry_system_packages), one cluster in a
# private directory, listening on 127.0.0.1 (a free port from 55432 up) and on a socket in
# that directory, run by a non-root user (the package's `postgres` user when this
# runs as root, since initdb and postgres refuse root). Idempotent: a second call
# finds the cluster running and only exports the connection.
#
# Exports:
#   FERRY_POSTGRES_CONNECTION_STRING                       postgresql://ferry:ferry@127.0.0.1:<port>/postgres
#   BACKSTAGE_TEST_DATABASE_POSTGRES<major>_CONNECTION_STRING  the same, for @backstage/backend-test-utils
#                                                          TestDatabases (id POSTGRES_<major>)
#   FERRY_TEST_DATABASE_POSTGRES_ID                        POSTGRES_<major>, the TestDatabases id to use
# Stop it with ferry_postgres_stop; its files are under $FERRY_POSTGRES_DIR.

# The first port tried; when something else listens there (another checkout's
# cluster, another user's), the next free one up to 100 above it. Set
# FERRY_POSTGRES_PORT to insist on one.
FERRY_POSTGRES_FIRST_PORT=55432

_ferry_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_ferry_postgres_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# The cluster's directory for PostgreSQL major $1. Not under $HOME: the postgres
# user must reach it when this runs as root.
_ferry_postgres_dir() {
  printf '%s' "${FERRY_POSTGRES_DIR:-${TMPDIR:-/tmp}/ferry-postgres-$1-$(id -u)}"
}

# Whether this checkout's throwaway cluster runs now (not: whether any server
# answers on a port).
ferry_postgres_running() {
  local bindir
  bindir="$(_ferry_postgres_bindir)"
  [ -n "$bindir" ] || return 1
  _ferry_postgres_as_owner "$bindir/pg_ctl" status \
    -D "$(_ferry_postgres_dir "$(basename "$(dirname "$bindir")")")/data" >/dev/null 2>&1
}

_ferry_postgres_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ferry_postgres() {
  if ! declare -F ferry_system_packages >/dev/null; then
    # shellcheck source=system.sh
    source "$(dirname "${BASH_SOURCE[0]}")/system.sh"
  fi
  if ! declare -F ferry_log >/dev/null; then
    ferry_log() { printf 'ferry: %s\n' "$*" >&2; }
  fi
  ferry_system_packages postgresql || return 1
  local bindir major dir data
  bindir="$(_ferry_postgres_bindir)"
  if [ -z "$bindir" ]; then
    ferry_log "PostgreSQL's binaries are not under /usr/lib/postgresql/*/bin"
    return 1
  fi
  major="$(basename "$(dirname "$bindir")")"
  dir="$(_ferry_postgres_dir "$major")"
  data="$dir/data"
  export FERRY_POSTGRES_DIR="$dir"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi

  if [ ! -f "$data/PG_VERSION" ]; then
    ferry_log "creating a throwaway PostgreSQL $major cluster in $data"
    local pwfile="$dir/pwfile"
    printf 'ferry\n' > "$pwfile"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$pwfile"; fi
    _ferry_postgres_as_owner "$bindir/initdb" -D "$data" -U ferry --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      ferry_log "initdb failed; see $dir/initdb.log"
      return 1
    }
    rm -f "$pwfile"
  fi

  local port
  if _ferry_postgres_as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    # Running from an earlier call: its port is the fourth line of its pid file.
    port="$(sed -n 4p "$data/postmaster.pid")"
  else
    port="${FERRY_POSTGRES_PORT:-}"
    if [ -z "$port" ]; then
      port="$FERRY_POSTGRES_FIRST_PORT"
      while _ferry_port_in_use "$port"; do
        port=$((port + 1))
        if [ "$port" -gt $((FERRY_POSTGRES_FIRST_PORT + 100)) ]; then
          ferry_log "no free port for PostgreSQL in $FERRY_POSTGRES_FIRST_PORT-$((port - 1)); set FERRY_POSTGRES_PORT"
          return 1
        fi
      done
    fi
    # Durability off: the cluster is thrown away, and the test suites create many databases.
    _ferry_postgres_as_owner "$bindir/pg_ctl" start -D "$data" -w -t 60 -l "$dir/server.log" \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      >/dev/null || {
      ferry_log "PostgreSQL did not start; see $dir/server.log"
      return 1
    }
  fi

  local url="postgresql://ferry:ferry@127.0.0.1:$port/postgres"
  export FERRY_POSTGRES_CONNECTION_STRING="$url"
  export "BACKSTAGE_TEST_DATABASE_POSTGRES${major}_CONNECTION_STRING=$url"
  export FERRY_TEST_DATABASE_POSTGRES_ID="POSTGRES_$major"
}

ferry_postgres_stop() {
  local bindir dir
  bindir="$(_ferry_postgres_bindir)"
  dir="${FERRY_POSTGRES_DIR:-}"
  if [ -n "$bindir" ] && [ -n "$dir" ] && [ -f "$dir/data/PG_VERSION" ]; then
    _ferry_postgres_as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m fast >/dev/null 2>&1 || true
  fi
}
