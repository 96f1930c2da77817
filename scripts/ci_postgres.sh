#!/usr/bin/env bash
# A throwaway PostgreSQL for tests: installs Debian's postgresql package when no server
# binaries are found, creates a cluster in a fresh temporary folder, starts it on
# 127.0.0.1 on a free port and prints the lines to eval:
#
#   eval "$(scripts/ci_postgres.sh start)"   # sets PROMPTWARDEN_TEST_POSTGRES_URL and PW_PG_DIR
#   scripts/ci_postgres.sh stop "$PW_PG_DIR" # stops it and deletes the folder
#   PW_PG_DURABLE=1 scripts/ci_postgres.sh start  # fsync on, as in production
#
# The server listens on loopback only and keeps its socket in its own folder, so it never
# clashes with a system cluster. Root cannot run postgres, so as root it runs as the
# `postgres` user (created by the package); anyone else runs it as themselves.
set -euo pipefail

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bindir
    if ! bindir=$(find_bindir); then
        echo "ci_postgres: installing Debian's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        bindir=$(find_bindir)
    fi
    local dir port password
    dir=$(mktemp -d "${TMPDIR:-/tmp}/promptwarden-pg.XXXXXX")
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" >"$dir/pwfile"
    chmod 600 "$dir/pwfile"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir"
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U promptwarden --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    # Tests open many short-lived databases and pools: allow plenty of connections.
    # Durability does not matter for a throwaway cluster, speed does; PW_PG_DURABLE=1
    # keeps PostgreSQL's defaults (fsync on), e.g. for benchmarks/storage_scale.py.
    local options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir"
    options="$options -c max_connections=300"
    if [ "${PW_PG_DURABLE:-0}" != 1 ]; then
        options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$options" \
        >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "export PW_PG_DIR='$dir'"
    echo "export PROMPTWARDEN_TEST_POSTGRES_URL='postgresql://promptwarden:$password@127.0.0.1:$port/postgres'"
}

stop() {
    local dir=${1:?usage: ci_postgres.sh stop DIR}
    local bindir
    bindir=$(find_bindir)
    if [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) shift; stop "$@" ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
