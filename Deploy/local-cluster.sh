#!/usr/bin/env bash
# Brings up the cluster on loopback without Docker: redis-server (append-only), three
# nodes and nginx in front. Waits until everything is ready, prints the URLs, and takes
# everything down again on Ctrl-C, SIGTERM or exit. Every process stays in the
# foreground of this script's process group (none daemonizes), so nothing outlives it.
#
#   Deploy/local-cluster.sh [--port 8080] [--binary .build/release/fanfare]
#
# Ports: nginx on --port (default 8080), nodes on the next three, Redis on the fourth.
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

port=8080
binary=.build/release/fanfare
while (($#)); do
    case $1 in
    --port) port=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
node_ports=($((port + 1)) $((port + 2)) $((port + 3)))
redis_port=$((port + 4))
workdir=$(mktemp -d -t fanfare-cluster.XXXXXX)
pids=()

redis_pid=
nginx_pid=

# In order: nginx (no new requests), the nodes (they drain), then Redis.
cleanup() {
    trap - EXIT INT TERM
    [[ -n $nginx_pid ]] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    [[ -n $redis_pid ]] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {
    local what=$1 command=$2
    for _ in $(seq 200); do
        if eval "$command" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "$what did not come up; logs are in $workdir" >&2
    exit 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$workdir" \
    --logfile "$workdir/redis.log" &
redis_pid=$!
wait_for "redis-server" "redis-cli -p $redis_port ping"

for index in 0 1 2; do
    FANFARE_TRUST_FORWARDED_FOR=1 \
    "$binary" serve --host 127.0.0.1 --port "${node_ports[$index]}" --node-id "node-$((index + 1))" \
        --redis "redis://127.0.0.1:$redis_port" >"$workdir/node-$((index + 1)).log" 2>&1 &
    pids+=($!)
done
for node_port in "${node_ports[@]}"; do
    wait_for "node on $node_port" "curl -sf http://127.0.0.1:$node_port/readyz"
done

Deploy/render-nginx.sh "127.0.0.1:$port" "127.0.0.1:${node_ports[0]}" "127.0.0.1:${node_ports[1]}" \
    "127.0.0.1:${node_ports[2]}" "$workdir/nginx" >"$workdir/nginx.conf"
nginx -c "$workdir/nginx.conf" -p "$workdir/nginx" -e stderr -g "daemon off;" \
    2>"$workdir/nginx.log" &
nginx_pid=$!
wait_for "nginx" "curl -sf http://127.0.0.1:$port/readyz"

cat <<INFO
Fanfare cluster is up (logs in $workdir):
  through nginx   http://127.0.0.1:$port
  nodes           http://127.0.0.1:${node_ports[0]}  http://127.0.0.1:${node_ports[1]}  http://127.0.0.1:${node_ports[2]}
  redis           redis://127.0.0.1:$redis_port (append-only)
  pages           http://127.0.0.1:$port/client?clientId=alice  http://127.0.0.1:$port/admin
  metrics         http://127.0.0.1:${node_ports[0]}/metrics (each node)
Try:
  curl -N http://127.0.0.1:$port/api/sse/subscribe/alice
  curl --json '{"clientId":"alice","event":"hello","payload":{"hi":1}}' http://127.0.0.1:$port/api/sse/notify
  $binary cluster --node http://127.0.0.1:$port
Ctrl-C stops everything.
INFO
wait "${pids[@]}"
