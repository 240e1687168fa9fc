#!/usr/bin/env bash
# Brings up the cluster on loopback without Docker: redis-server (append-only), three
# nodes and nginx in front. Waits until everything is ready, prints the URLs, and takes
# everything down again on Ctrl-C, SIGTERM or exit. Every process stays in the
# foreground of this script's process group (none daemonizes), so nothing outlives it.
#
#   Deploy/local-cluster.sh [--port 8080] [--binary .build/release/fanfare] [--sentinel | --redis-cluster]
#                           [--replica-acks N]
#
# Ports: nginx on --port (default 8080), nodes on the next three, Redis on the fourth.
# --sentinel: Redis fails over: the fourth port is the first master, with two replicas on
# the fifth and sixth and three sentinels on the seventh to ninth; the nodes follow the
# master through the sentinels and acknowledge a publish once a replica has it.
# --redis-cluster: a Redis Cluster instead of one Redis: primaries on the fourth to sixth
# ports, a replica of each on the seventh to ninth (`redis-cli --cluster create`), their
# cluster bus ports ten above each (the fifteenth to twentieth); the nodes route by slot, subscribe per primary (sharded pub/sub) and acknowledge a publish
# once a replica has it.
# --replica-acks N (with --sentinel or --redis-cluster): how many replicas must have a
# publish before it is acknowledged (default 1; 0: none).
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

port=8080
binary=.build/release/fanfare
sentinel=0
redis_cluster=0
replica_acks=1
replica_acks_given=0
while (($#)); do
    case $1 in
    --port) port=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --sentinel) sentinel=1; shift ;;
    --redis-cluster) redis_cluster=1; shift ;;
    --replica-acks) replica_acks=${2:-}; replica_acks_given=1; shift; (($#)) && shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
node_ports=($((port + 1)) $((port + 2)) $((port + 3)))
redis_port=$((port + 4))
replica_ports=($((port + 5)) $((port + 6)))
sentinel_ports=($((port + 7)) $((port + 8)) $((port + 9)))
cluster_ports=($((port + 4)) $((port + 5)) $((port + 6)) $((port + 7)) $((port + 8)) $((port + 9)))
if ((sentinel && redis_cluster)); then
    echo "--sentinel and --redis-cluster are two ways to run Redis: choose one" >&2
    exit 2
fi
if [[ ! $replica_acks =~ ^[0-9]+$ ]]; then
    echo "--replica-acks takes a count of replicas (0 or more), not '$replica_acks'" >&2
    exit 2
fi
if ((replica_acks_given && !sentinel && !redis_cluster)); then
    echo "--replica-acks needs replicas: add --sentinel or --redis-cluster" >&2
    exit 2
fi
workdir=$(mktemp -d -t fanfare-cluster.XXXXXX)
pids=()

redis_pid=
nginx_pid=
redis_pids=()

# Sends SIGTERM to the processes given and gives them up to $1 seconds to go, then SIGKILL.
# It polls rather than using `wait PID`: bash 5.2, interrupted by Ctrl-C inside `wait`, can
# lose a child's exit from its job table, and a later `wait` on that child blocks for ever.
stop() {
    local seconds=$1 pid alive tenth
    shift
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    for ((tenth = 0; tenth < seconds * 10; tenth++)); do
        alive=0
        for pid; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null || true
}

# In order: nginx (no new requests), the nodes (they drain, 10 s at most), then Redis.
cleanup() {
    trap - EXIT INT TERM
    [[ -n $nginx_pid ]] && stop 5 "$nginx_pid"
    stop 15 "${pids[@]}"
    [[ -n $redis_pid ]] && stop 10 "$redis_pid"
    stop 10 "${redis_pids[@]}"
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {
    local what=$1 command=$2
    for _ in $(seq 400); do
        if eval "$command" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "$what did not come up; logs are in $workdir" >&2
    exit 1
}

node_options=()
if ((redis_cluster)); then
    hosts=()
    for cluster_port in "${cluster_ports[@]}"; do
        mkdir -p "$workdir/redis-$cluster_port"
        redis-server --port "$cluster_port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-port $((cluster_port + 10)) --cluster-node-timeout 2000 --appendonly yes --save "" --dir "$workdir/redis-$cluster_port" \
            --logfile "$workdir/redis-$cluster_port.log" &
        redis_pids+=($!)
        hosts+=("127.0.0.1:$cluster_port")
    done
    for cluster_port in "${cluster_ports[@]}"; do
        wait_for "redis-server on $cluster_port" "redis-cli -p $cluster_port ping"
    done
    # The first three are the primaries, each of the others a replica of one of them.
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$workdir/cluster-create.log" 2>&1 ||
        { echo "redis-cli --cluster create failed; see $workdir/cluster-create.log" >&2; exit 1; }
    for cluster_port in "${cluster_ports[@]}"; do
        wait_for "the cluster on $cluster_port" \
            "redis-cli -p $cluster_port cluster info | grep -q cluster_state:ok &&
             redis-cli -p $cluster_port info replication | grep -Eq 'role:master|master_link_status:up'"
    done
    redis_url="redis-cluster://$(IFS=,; echo "${hosts[*]:0:3}")"
    node_options=(--replica-acks "$replica_acks")
else
    redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$workdir" \
        --logfile "$workdir/redis.log" &
    redis_pid=$!
    wait_for "redis-server" "redis-cli -p $redis_port ping"
    redis_url="redis://127.0.0.1:$redis_port"
fi
if ((sentinel)); then
    redis-cli -p "$redis_port" config set repl-diskless-sync-delay 0 >/dev/null
    for replica_port in "${replica_ports[@]}"; do
        redis-server --port "$replica_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$workdir" \
            --appendfilename "replica-$replica_port.aof" --appenddirname "replica-$replica_port" \
            --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$redis_port" --logfile "$workdir/redis-$replica_port.log" &
        redis_pids+=($!)
    done
    for replica_port in "${replica_ports[@]}"; do
        wait_for "replica on $replica_port" "redis-cli -p $replica_port info replication | grep -q master_link_status:up"
    done
    hosts=()
    for sentinel_port in "${sentinel_ports[@]}"; do
        # Each sentinel rewrites a configuration file of its own.
        cat >"$workdir/sentinel-$sentinel_port.conf" <<CONF
port $sentinel_port
bind 127.0.0.1
dir $workdir
sentinel resolve-hostnames no
sentinel monitor fanfare 127.0.0.1 $redis_port 2
sentinel down-after-milliseconds fanfare 2000
sentinel failover-timeout fanfare 10000
CONF
        redis-server "$workdir/sentinel-$sentinel_port.conf" --sentinel --logfile "$workdir/sentinel-$sentinel_port.log" &
        redis_pids+=($!)
        hosts+=("127.0.0.1:$sentinel_port")
    done
    # Ready to fail over once each sentinel knows both replicas and the two other sentinels.
    for sentinel_port in "${sentinel_ports[@]}"; do
        wait_for "sentinel on $sentinel_port" \
            "redis-cli -p $sentinel_port sentinel master fanfare | grep -A1 -x num-other-sentinels | grep -qx 2 &&
             redis-cli -p $sentinel_port sentinel master fanfare | grep -A1 -x num-slaves | grep -qx 2"
    done
    redis_url="redis-sentinel://$(IFS=,; echo "${hosts[*]}")/fanfare"
    node_options=(--replica-acks "$replica_acks")
fi

for index in 0 1 2; do
    FANFARE_TRUST_FORWARDED_FOR=1 \
    "$binary" serve --host 127.0.0.1 --port "${node_ports[$index]}" --node-id "node-$((index + 1))" \
        --redis "$redis_url" "${node_options[@]}" >"$workdir/node-$((index + 1)).log" 2>&1 &
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
  redis           $redis_url (append-only)
  pages           http://127.0.0.1:$port/client?clientId=alice  http://127.0.0.1:$port/admin
  metrics         http://127.0.0.1:${node_ports[0]}/metrics (each node)
Try:
  curl -N http://127.0.0.1:$port/api/sse/subscribe/alice
  curl --json '{"clientId":"alice","event":"hello","payload":{"hi":1}}' http://127.0.0.1:$port/api/sse/notify
  $binary cluster --node http://127.0.0.1:$port
Ctrl-C stops everything.
INFO
wait "${pids[@]}"
