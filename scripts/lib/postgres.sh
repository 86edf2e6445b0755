# shellcheck shell=bash
# A throwaway PostgreSQL for the test suites and benchmarks: Debian's `postgresql`
# package (installed on demand through ferry_system_packages), one cluster in a
# private directory, listening on 127.0.0.1:$FERRY_POSTGRES_PORT and on a socket in
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

FERRY_POSTGRES_PORT="${FERRY_POSTGRES_PORT:-55432}"

_ferry_postgres_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
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
  # Not under $HOME: the postgres user must reach it when this runs as root.
  dir="${FERRY_POSTGRES_DIR:-${TMPDIR:-/tmp}/ferry-postgres-$major-$(id -u)}"
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

  if ! _ferry_postgres_as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    # Durability off: the cluster is thrown away, and the test suites create many databases.
    _ferry_postgres_as_owner "$bindir/pg_ctl" start -D "$data" -w -t 60 -l "$dir/server.log" \
      -o "-p $FERRY_POSTGRES_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      >/dev/null || {
      ferry_log "PostgreSQL did not start; see $dir/server.log"
      return 1
    }
  fi

  local url="postgresql://ferry:ferry@127.0.0.1:$FERRY_POSTGRES_PORT/postgres"
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
