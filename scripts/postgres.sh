#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for tests and local clusters: its own cluster in DIR,
# trust authentication, on 127.0.0.1 and a Unix socket in DIR, not the system's service.
#
#   scripts/postgres.sh start DIR [PORT]              new cluster, prints its URL (default port 55432)
#   scripts/postgres.sh stop DIR                      fast shutdown; fine if it is not running
#   scripts/postgres.sh restart DIR fast|immediate    immediate: a crash, recovered on start
#   scripts/postgres.sh psql DIR [psql args...]       e.g. psql DIR -Atc "select 1"
#
# `start` prints postgres://qrlogin@127.0.0.1:PORT/qrlogin?sslmode=disable as its only line on
# stdout (role qrlogin is the superuser); everything else goes to stderr. DIR holds the cluster
# (DIR/data), its log (DIR/postgres.log) and what the other commands need (DIR/port, DIR/url,
# DIR/user). Installs Debian's postgresql package when initdb and pg_ctl are missing.
# initdb and postgres refuse to run as root: as root they run as the `postgres` system user (or
# a `qrlogin-pg` system user, created when there is no `postgres`), which gets DIR; the folders
# above DIR must let that user through (a `mktemp -d` folder as DIR itself does).
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
usage() { sed -n '5,8s/^#   /usage: /p' "$0" >&2; exit 2; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

# The newest installed server version; Debian keeps each in /usr/lib/postgresql/<version>/bin.
find_bin() {
    local found
    found=$(printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
    [ -x "$found" ] && [ -x "${found%/pg_ctl}/initdb" ] && echo "${found%/pg_ctl}"
}
server_bin() {
    local bin
    if ! bin=$(find_bin); then
        echo "== installing postgresql" >&2
        apt_install postgresql
        bin=$(find_bin) || die "no initdb and pg_ctl under /usr/lib/postgresql/*/bin after installing postgresql"
    fi
    echo "$bin"
}

# Runs a server program as the cluster's owner, from / (its home may be closed to that user).
as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$(cat "$dir/user")" -- "$@"); else "$@"; fi
}
pg_ctl_() { as_owner "$(server_bin)/pg_ctl" -D "$dir/data" "$@"; }
running() { [ -f "$dir/data/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; }
log_tail() { echo "---- $dir/postgres.log (last 30 lines)" >&2; tail -n 30 "$dir/postgres.log" >&2 2>/dev/null || true; }

[ $# -ge 2 ] || usage
command=$1 dir=$2
shift 2
[ "$command" != start ] || mkdir -p "$dir"
if [ ! -d "$dir" ]; then [ "$command" = stop ] && exit 0; die "no folder $dir"; fi
dir=$(cd "$dir" && pwd)

case $command in
start)
    [ $# -le 1 ] || usage
    port=${1:-55432}
    [[ $port =~ ^[0-9]+$ ]] || die "not a port: $port"
    bin=$(server_bin)
    if [ -f "$dir/data/PG_VERSION" ] && running; then
        die "a PostgreSQL server is already running in $dir ($(cat "$dir/url" 2>/dev/null)); stop it first"
    fi
    [ ! -f "$dir/data/PG_VERSION" ] || die "$dir holds a stopped cluster: \`restart $dir fast\` starts it again, \`start\` wants an empty or new folder"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty; start makes a new cluster in an empty or new folder"

    user=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        if getent passwd postgres >/dev/null; then
            user=postgres
        else
            user=qrlogin-pg
            getent passwd "$user" >/dev/null \
                || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
        fi
        chown "$user" "$dir"
        runuser -u "$user" -- test -w "$dir" 2>/dev/null \
            || die "user $user cannot reach $dir: a folder above it is closed to others (use a folder of its own, e.g. mktemp -d)"
    fi
    url="postgres://qrlogin@127.0.0.1:$port/qrlogin?sslmode=disable"
    echo "$user" >"$dir/user"
    echo "$port" >"$dir/port"
    echo "$url" >"$dir/url"

    echo "== initdb $dir/data (PostgreSQL $(basename "$(dirname "$bin")"))" >&2
    # --no-sync only spares initdb's final flush of a throwaway cluster; the server keeps fsync on.
    as_owner "$bin/initdb" -D "$dir/data" -U qrlogin --auth=trust --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # Three server instances' pools plus the tests' own connections.
    cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/postgres.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
fsync = on
EOF
    echo "== starting PostgreSQL on 127.0.0.1:$port" >&2
    pg_ctl_ start -w -t 60 -l "$dir/postgres.log" >&2 || { log_tail; die "PostgreSQL did not start"; }
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 "postgres://qrlogin@127.0.0.1:$port/postgres?sslmode=disable" \
        -c "create database qrlogin" >&2 || { pg_ctl_ stop -m fast >&2 || true; die "could not create database qrlogin"; }
    echo "$url"
    ;;
stop)
    [ $# = 0 ] || usage
    [ -f "$dir/data/PG_VERSION" ] || { echo "postgres.sh: no cluster in $dir" >&2; exit 0; }
    if running; then pg_ctl_ stop -m fast -w -t 60 >&2; else echo "postgres.sh: not running in $dir" >&2; fi
    ;;
restart)
    [ $# = 1 ] && [[ $1 =~ ^(fast|immediate)$ ]] || usage
    [ -f "$dir/data/PG_VERSION" ] || die "no cluster in $dir"
    pg_ctl_ restart -m "$1" -w -t 60 -l "$dir/postgres.log" >&2 || { log_tail; die "PostgreSQL did not restart"; }
    ;;
psql)
    [ -f "$dir/url" ] || die "no cluster in $dir"
    psql=$(command -v psql || echo "$(server_bin)/psql")
    # -X: no ~/.psqlrc, so output is the same everywhere.
    exec "$psql" -X "$(cat "$dir/url")" "$@"
    ;;
*) usage ;;
esac
