#!/usr/bin/env bash
# What the delivery check costs: one release node on its own Redis, idle, for SECONDS
# (default 60) with the check on (a probe a second) and then off (--delivery-probe-ms 0);
# prints the CPU time (user + system) of the node and of Redis in each run and the
# difference per probe.
#
#   Benchmarks/probe-cost.sh          FANFARE_BINARY=path SECONDS_EACH=60 Benchmarks/probe-cost.sh
#
# Not a test: the figure is for closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_EACH:-60}
fanfare=${FANFARE_BINARY:-.build/release/fanfare}
[[ -n ${FANFARE_BINARY:-} ]] || swift build -c release --product fanfare >/dev/null
workdir=$(mktemp -d)
redis_port=$(( (RANDOM % 5000) + 10000 ))
node_port=$(( redis_port + 1 ))
node_pid=
cleanup() {
    [[ -n $node_pid ]] && kill "$node_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize yes
sleep 0.3
redis_pid=$(redis-cli -p "$redis_port" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }

run() {
    local probe=$1
    "$fanfare" serve --host 127.0.0.1 --port "$node_port" --redis "redis://127.0.0.1:$redis_port" \
        --node-id "probe-$probe" --event-loops 1 --delivery-probe-ms "$probe" --log-level warning &
    node_pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$node_port/readyz" >/dev/null && break; sleep 0.1; done
    sleep 2
    local node0 redis0 node1 redis1
    node0=$(cpu "$node_pid"); redis0=$(cpu "$redis_pid")
    sleep "$seconds"
    node1=$(cpu "$node_pid"); redis1=$(cpu "$redis_pid")
    kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=
    awk -v p="$probe" -v a="$node0" -v b="$node1" -v c="$redis0" -v d="$redis1" 'BEGIN {printf "%s %.3f %.3f\n", p, b - a, d - c}'
}

on=$(run 1000)
off=$(run 0)
read -r _ node_on redis_on <<<"$on"
read -r _ node_off redis_off <<<"$off"
echo "idle node for ${seconds}s: probe on: node ${node_on}s, redis ${redis_on}s of CPU; probe off: node ${node_off}s, redis ${redis_off}s"
awk -v a="$node_on" -v b="$node_off" -v c="$redis_on" -v d="$redis_off" -v s="$seconds" \
    'BEGIN {printf "per probe (one a second): %.0f us of node CPU, %.0f us of Redis CPU\n", (a - b) * 1e6 / s, (c - d) * 1e6 / s}'
