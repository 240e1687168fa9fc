# nchan (nginx + libnginx-mod-nchan) as a benchmark peer: two nginx instances, one worker
# each, sharing one Redis, on loopback. Sourced by Benchmarks/scenarios.sh.
#
#   nchan_start <workdir> <redis_port> <port1> <port2>
#       Writes nginx-<port>.conf into workdir, starts both instances, waits until both
#       answer. Sets nchan_master_pids and nchan_pids (the worker pids, for CPU/RSS).
#   nchan_stop
#       Stops both instances (SIGQUIT, then SIGTERM, then SIGKILL); safe to call twice.
#
# Endpoints on each instance:
#   GET  /sub/<a>        EventSource subscriber on channel <a>
#   GET  /sub2/<a>/<b>   EventSource subscriber on channels <a> and <b> (multiplexed)
#   POST /pub/<a>        publish the request body to channel <a>
#   GET  /ready          200, for the start-up wait
#
# A new subscriber (no Last-Event-ID) gets only messages published after it subscribed,
# as on a Fanfare node; up to 100 messages per channel are kept 5 minutes for resuming.
# The first subscriber of a channel on an instance is subscribed in Redis only after its
# `: hi` went out (measured: under 1 ms on an idle machine); a publish in that gap is
# not delivered to it.

nchan_pids=()
nchan_master_pids=()

# Installs nginx and the nchan module if they are missing (Debian).
nchan_install() {
    if command -v nginx >/dev/null 2>&1 && [[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]]; then
        return 0
    fi
    apt-get install -y nginx libnginx-mod-nchan >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y nginx libnginx-mod-nchan >/dev/null; }
}

# Writes the config of one instance to stdout.
nchan_config() {
    local workdir=$1 redis_port=$2 port=$3 nofile
    # One fd per connection (clients and the Redis links); capped by the hard limit.
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited || $nofile -gt 30000 ]] && nofile=30000
    cat <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $workdir/nginx-$port.pid;
error_log $workdir/nginx-$port.error.log warn;

events {
    worker_connections $nofile;
    multi_accept on;
}

http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $workdir/tmp-$port/body;
    proxy_temp_path $workdir/tmp-$port/proxy;
    fastcgi_temp_path $workdir/tmp-$port/fastcgi;
    uwsgi_temp_path $workdir/tmp-$port/uwsgi;
    scgi_temp_path $workdir/tmp-$port/scgi;
    # Keep publish bodies in memory.
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 300s;

    upstream fanfare_redis {
        nchan_redis_server redis://127.0.0.1:$redis_port;
    }

    server {
        listen 127.0.0.1:$port backlog=4096;

        nchan_message_buffer_length 100;
        nchan_message_timeout 5m;

        location = /ready {
            return 200 "ok\n";
        }
        location ~ ^/sub/([^/]+)$ {
            nchan_subscriber eventsource;
            nchan_redis_pass fanfare_redis;
            nchan_channel_id \$1;
            nchan_subscriber_first_message newest;
            # 0: subscribers are never timed out; no eventsource pings (the default).
            nchan_subscriber_timeout 0;
        }
        location ~ ^/sub2/([^/]+)/([^/]+)$ {
            nchan_subscriber eventsource;
            nchan_redis_pass fanfare_redis;
            nchan_channel_id \$1 \$2;
            nchan_subscriber_first_message newest;
            nchan_subscriber_timeout 0;
        }
        location ~ ^/pub/([^/]+)$ {
            nchan_publisher http;
            nchan_redis_pass fanfare_redis;
            nchan_channel_id \$1;
        }
    }
}
EOF
}

nchan_start() {
    local workdir=$1 redis_port=$2 port pid i
    shift 2
    nchan_install
    nchan_pids=()
    nchan_master_pids=()
    for port in "$@"; do
        mkdir -p "$workdir/tmp-$port"
        nchan_config "$workdir" "$redis_port" "$port" >"$workdir/nginx-$port.conf"
        nginx -p "$workdir" -e "$workdir/nginx-$port.error.log" -c "$workdir/nginx-$port.conf" \
            >>"$workdir/nginx-$port.out" 2>&1 &
        nchan_master_pids+=($!)
    done
    for port in "$@"; do
        for i in $(seq 100); do
            curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
            if ((i == 100)); then
                echo "nchan on port $port did not answer within 10 s; see $workdir/nginx-$port.error.log" >&2
                nchan_stop
                return 1
            fi
            sleep 0.1
        done
    done
    for pid in "${nchan_master_pids[@]}"; do
        nchan_pids+=($(pgrep -P "$pid" || true))
    done
    if ((${#nchan_pids[@]} != ${#nchan_master_pids[@]})); then
        echo "nchan: expected one worker per instance, found: ${nchan_pids[*]}" >&2
        nchan_stop
        return 1
    fi
}

# True while pid runs (an exited master stays a zombie of this shell until waited).
nchan_alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

nchan_stop() {
    local pid sig i alive
    ((${#nchan_master_pids[@]})) || return 0
    for sig in QUIT TERM KILL; do
        for pid in "${nchan_master_pids[@]}" "${nchan_pids[@]}"; do
            [[ $sig == QUIT && " ${nchan_pids[*]} " == *" $pid "* ]] && continue
            kill -s "$sig" "$pid" 2>/dev/null || true
        done
        for i in $(seq 50); do
            alive=0
            for pid in "${nchan_master_pids[@]}" "${nchan_pids[@]}"; do
                nchan_alive "$pid" && alive=1
            done
            ((alive)) || break
            sleep 0.1
        done
        ((alive)) || break
    done
    wait "${nchan_master_pids[@]}" 2>/dev/null || true
    nchan_pids=()
    nchan_master_pids=()
}
