#!/usr/bin/env bash
# Several `qrlogin serve` instances on one PostgreSQL database behind nginx (round robin): for
# the cluster tests, and to try a multi-instance setup locally.
#
#   scripts/cluster.sh start DIR --binary QRLOGIN --database URL [--instances 3] [--port 8090] [-- serve args...]
#   scripts/cluster.sh stop DIR
#   scripts/cluster.sh kill DIR I      kill -9 instance I (1-based)
#   scripts/cluster.sh revive DIR I    start instance I again, with the same arguments
#
# nginx listens on 127.0.0.1:PORT, the instances on 127.0.0.1:PORT+1..PORT+N, each started as
#   QRLOGIN serve --host 127.0.0.1 --port P --database URL --public-url http://127.0.0.1:PORT
#       --trusted-proxy 127.0.0.1 [serve args...]
# `start` waits for every instance's GET /health and prints http://127.0.0.1:PORT as its only
# line on stdout; on failure it stops what it started. DIR holds nginx.conf, its logs and pid,
# instance-I.log and instance-I.pid, and cluster.env (the arguments, for revive and stop).
# Installs Debian's nginx package when nginx is missing; the system's nginx config and service
# are not used.
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '5,8s/^#   /usage: /p' "$0" >&2; exit 2; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

# A process that was killed but not yet reaped (its parent, this script, is gone) is a zombie:
# it answers kill -0 but is dead.
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
nginx_() { nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx-error.log" "$@"; }

start_instance() {
    local i=$1 p=$((port + $1))
    "$binary" serve --host 127.0.0.1 --port "$p" --database "$database" \
        --public-url "http://127.0.0.1:$port" --trusted-proxy 127.0.0.1 ${extra[@]+"${extra[@]}"} \
        </dev/null >>"$dir/instance-$i.log" 2>&1 &
    echo $! >"$dir/instance-$i.pid"
}
wait_instance() {
    local i=$1 p=$((port + $1)) pid deadline=$((SECONDS + 60))
    pid=$(pid_of "instance-$i")
    while [ $SECONDS -lt $deadline ]; do
        alive "$pid" || { tail -n 30 "$dir/instance-$i.log" >&2; die "instance $i exited (log: $dir/instance-$i.log)"; }
        curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$p/health" && return 0
        sleep 0.2
    done
    tail -n 30 "$dir/instance-$i.log" >&2
    die "instance $i did not answer http://127.0.0.1:$p/health within 60 s"
}
stop_all() {
    local name pid pids=()
    for name in "$dir"/instance-*.pid; do
        [ -f "$name" ] || continue
        pid=$(cat "$name")
        if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    for _ in $(seq 1 100); do
        local left=()
        for pid in ${pids[@]+"${pids[@]}"}; do alive "$pid" && left+=("$pid"); done
        pids=(${left[@]+"${left[@]}"})
        [ ${#pids[@]} = 0 ] && break
        sleep 0.1
    done
    for pid in ${pids[@]+"${pids[@]}"}; do echo "cluster.sh: instance $pid ignored SIGTERM for 10 s: SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; done
    pid=$(pid_of nginx)
    if alive "$pid"; then
        # Graceful, then fast (TERM: its workers close their connections), then KILL.
        nginx_ -s quit 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
}

[ $# -ge 2 ] || usage
command=$1 dir=$2
shift 2

case $command in
start)
    binary="" database="" instances=3 port=8090 extra=()
    while [ $# -gt 0 ]; do
        case $1 in
        --binary) binary=${2:?}; shift 2 ;;
        --database) database=${2:?}; shift 2 ;;
        --instances) instances=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) usage ;;
        esac
    done
    [ -n "$binary" ] && [ -n "$database" ] || usage
    [[ $instances =~ ^[1-9][0-9]*$ ]] && [[ $port =~ ^[1-9][0-9]*$ ]] || usage
    [ -x "$binary" ] || die "not an executable: $binary"
    binary=$(realpath "$binary")
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    alive "$(pid_of nginx)" && die "a cluster is already running in $dir; stop it first"
    for p in $(seq "$port" $((port + instances))); do
        ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "port $p on 127.0.0.1 is taken"
    done

    missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}" >&2
        apt_install "${missing[@]}"
    fi

    rm -f "$dir"/instance-*.pid "$dir"/instance-*.log
    declare -p binary database instances port extra >"$dir/cluster.env"
    trap 'stop_all' EXIT
    trap 'exit 1' INT TERM
    echo "== $instances instances of $binary serve on 127.0.0.1:$((port + 1))..$((port + instances))" >&2
    for i in $(seq 1 "$instances"); do start_instance "$i"; done
    for i in $(seq 1 "$instances"); do wait_instance "$i"; done

    servers=""
    for i in $(seq 1 "$instances"); do
        servers+="        server 127.0.0.1:$((port + i)) max_fails=1 fail_timeout=2s;"$'\n'
    done
    # Everything nginx writes is in DIR (its default paths are /var/lib/nginx and /var/log/nginx).
    # Run by root, the workers stay root so they can use DIR.
    user_line=""
    [ "$(id -u)" != 0 ] || user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
# Written by scripts/cluster.sh; run as nginx -c $dir/nginx.conf -p $dir
$user_line
worker_processes auto;
worker_rlimit_nofile 16384;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 8192; }
http {
    log_format upstream '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent \$upstream_addr \$request_time';
    access_log $dir/nginx-access.log upstream;
    client_body_temp_path $dir/nginx-tmp/body;
    proxy_temp_path $dir/nginx-tmp/proxy;
    fastcgi_temp_path $dir/nginx-tmp/fastcgi;
    uwsgi_temp_path $dir/nginx-tmp/uwsgi;
    scgi_temp_path $dir/nginx-tmp/scgi;

    upstream qrlogin {
$servers        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://qrlogin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            # A refused connection (a killed instance) goes to the next instance; a POST or PATCH
            # already sent is not sent again.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            # Server-Sent Events: each event passes through at once, and a stream may idle.
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 3600s;
        }
    }
}
EOF
    mkdir -p "$dir/nginx-tmp"
    echo "== nginx on 127.0.0.1:$port" >&2
    nginx_ -t -q >&2 || die "nginx rejected $dir/nginx.conf"
    nginx_ >&2 || die "nginx did not start (log: $dir/nginx-error.log)"
    for _ in $(seq 1 50); do curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" && break; sleep 0.1; done
    curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" \
        || { tail -n 20 "$dir/nginx-error.log" >&2; die "nginx at http://127.0.0.1:$port/health does not answer"; }
    trap - EXIT INT TERM
    echo "http://127.0.0.1:$port"
    ;;
stop)
    [ $# = 0 ] || usage
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    stop_all
    ;;
kill | revive)
    [ $# = 1 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || usage
    i=$1
    dir=$(cd "$dir" && pwd)
    [ -f "$dir/cluster.env" ] || die "no cluster in $dir"
    # shellcheck source=/dev/null
    source "$dir/cluster.env"
    [ "$i" -le "$instances" ] || die "there are $instances instances"
    pid=$(pid_of "instance-$i")
    if [ "$command" = kill ]; then
        alive "$pid" || die "instance $i is not running"
        kill -KILL "$pid"
        for _ in $(seq 1 50); do alive "$pid" || exit 0; sleep 0.1; done
        die "instance $i ($pid) survived SIGKILL"
    fi
    alive "$pid" && die "instance $i is running"
    echo "== reviving instance $i on 127.0.0.1:$((port + i))" >&2
    start_instance "$i"
    wait_instance "$i"
    ;;
*) usage ;;
esac
