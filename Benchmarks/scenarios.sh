#!/usr/bin/env bash
# Runs the standard load scenarios against a local cluster of 2 nodes + Redis, all on
# loopback, with release builds. Prints the load generator's figures for each scenario.
#
#   Benchmarks/scenarios.sh [idle|flat|fanout|latency|resume|resume-busy|replay|catchup|floor ...]
#                                                                              (default: all)
#
# `floor` runs no node: it measures what the kernel alone costs to broadcast over loopback
# TCP on this machine (raw write(2) of one frame per connection, 2 writer threads for the 2
# nodes), for the fanout and latency shapes. No server that writes one frame per delivery
# can spend less system time per delivery, or finish a round sooner, on the same cores.
# (9,000 connections, not 10,000: both ends live in one process, under the open-file limit.)
#
# Not a test: the figures go into closing notes and docs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-dependencies.sh
swift build -c release --product fanfare
swift build -c release --product fanfare-load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

workdir=$(mktemp -d)
redis_port=$(( (RANDOM % 5000) + 21000 ))
ports=($(( redis_port + 1 )) $(( redis_port + 2 )))
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize yes
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_nodes() {
    pids=()
    for port in "${ports[@]}"; do
        .build/release/fanfare serve --host 127.0.0.1 --port "$port" --node-id "bench-$port" \
            --redis "redis://127.0.0.1:$redis_port" --log-level warning >"$workdir/node-$port.log" 2>&1 &
        pids+=($!)
    done
    for port in "${ports[@]}"; do
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    done
}
stop_nodes() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}

nodes="http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]}"
run() {
    local name=$1
    shift
    echo "== $name"
    start_nodes
    .build/release/fanfare-load --nodes "$nodes" --pids "$(IFS=,; echo "${pids[*]}")" "$@"
    stop_nodes
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(idle flat fanout latency resume resume-busy replay catchup floor)
for scenario in "${scenarios[@]}"; do
    case $scenario in
    idle) run "10,000 idle connections" --connections 10000 --events 0 ;;
    flat) run "1,000 subscribers, broadcast flat out for 10 s" --connections 1000 --events 1000000 --seconds 10 --window 1000 --publishers 64 ;;
    fanout) run "10,000 subscribers at 10 events/s" --connections 10000 --events 100 --rate 10 ;;
    latency) run "1,000 subscribers at 1 event/s" --connections 1000 --events 10 --rate 1 ;;
    resume) run "1,000 clients reconnect 100 events behind" --connections 1000 --events 0 --resume-behind 100 ;;
    resume-busy)
        run "1,000 clients reconnect 100 events behind, among 200,000 events of other channels" \
            --connections 1000 --events 0 --resume-behind 100 --resume-noise 200000 --redis "127.0.0.1:$redis_port"
        ;;
    replay) run "one client replays 10,000 missed events" --connections 1 --events 0 --resume-behind 10000 ;;
    catchup)
        run "one client catches up 10 MiB (10,000 events of 1 KiB) on one connection" \
            --connections 1 --events 0 --resume-behind 10000 --payload-bytes 1000
        ;;
    floor)
        echo "== floor: 9,000 loopback connections at 10 rounds/s, no server"
        .build/release/fanfare-load --floor --connections 9000 --events 100 --rate 10
        echo "== floor: 1,000 loopback connections at 1 round/s, no server"
        .build/release/fanfare-load --floor --connections 1000 --events 10 --rate 1
        ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
done
