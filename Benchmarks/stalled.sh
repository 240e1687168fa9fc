#!/usr/bin/env bash
# Readers that stall mid catch-up: one release node (default settings: a 1 MiB slow-consumer
# bound) on its own Redis, STREAMS readers (default 100), each on a client id of its own and
# the channels a and b, resume MISSED_MB behind on a (default 10, more than the kernel's
# socket buffers hold) with a 4 KiB receive buffer, read a little and stop; then PUBLISH_MB
# (default 100) go out on b in batches. Prints the node's RSS before and after, the growth
# per stalled reader against twice the bound, and the slow-consumer closes.
#
#   Benchmarks/stalled.sh            FANFARE_BINARY=path STREAMS=100 PUBLISH_MB=100 Benchmarks/stalled.sh
#
# Not a test: the figure is for closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${STREAMS:-100}
missed_mb=${MISSED_MB:-10}
publish_mb=${PUBLISH_MB:-100}
fanfare=${FANFARE_BINARY:-.build/release/fanfare}
[[ -n ${FANFARE_BINARY:-} ]] || swift build -c release --product fanfare >/dev/null
workdir=$(mktemp -d)
redis_port=$(( (RANDOM % 5000) + 10000 ))
node_port=$(( redis_port + 1 ))
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
sleep 0.3
"$fanfare" serve --host 127.0.0.1 --port "$node_port" --redis "redis://127.0.0.1:$redis_port" \
    --node-id stalled-bench --event-loops 1 --history-size 1000000 --replay-cap 1000000 \
    --max-body-bytes 1048576 --max-connections-per-client 0 --log-level warning 2>"$workdir/node.log" &
pids+=($!)
node_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$node_port/readyz" >/dev/null && break; sleep 0.1; done

python3 - "$node_port" "$streams" "$missed_mb" "$publish_mb" "$node_pid" <<'PY'
import json, re, socket, sys, time, urllib.request
port, streams, missed_mb, publish_mb, node_pid = (int(a) for a in sys.argv[1:])
base = f"http://127.0.0.1:{port}"
payload = '"' + "x" * 1000 + '"'

def publish(channel, count):
    sent = 0
    while sent < count:
        n = min(200, count - sent)
        body = "[" + ",".join('{"channel":"%s","event":"e","payload":%s}' % (channel, payload) for _ in range(n)) + "]"
        request = urllib.request.Request(base + "/api/sse/notify", data=body.encode(), headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
        sent += n

def rss():
    for line in open(f"/proc/{node_pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def metric(name):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    match = re.search(name + r'\{node="stalled-bench"\} (\S+)', text)
    return float(match.group(1)) if match else 0.0

def open_stream(client, cursor=None, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    headers = f"GET /api/sse/subscribe/{client}?channels=a,b HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
    if cursor:
        headers += f"Last-Event-ID: {cursor}\r\n"
    s.sendall((headers + "\r\n").encode())
    return s

# Every reader's starting cursor, then what they miss on a.
cursors = []
for i in range(streams):
    s = open_stream(f"stall-{i}")
    data = b""
    while b"event: __connected" not in data:
        data += s.recv(65536)
    cursors.append(re.search(rb"id: (\S+)\nevent: __connected", data).group(1).decode())
    s.close()
publish("a", missed_mb * 1024)
readers = []
for i in range(streams):
    s = open_stream(f"stall-{i}", cursors[i], rcvbuf=4096)
    s.recv(4096)  # a little of the catch-up, then never again
    readers.append(s)
time.sleep(1)
before = rss()
start = time.time()
publish("b", publish_mb * 1024)
seconds = time.time() - start
time.sleep(2)
after = rss()
closes = metric("fanfare_slow_consumer_closes_total")
bound = 1 << 20
growth = after - before
print(f"{streams} readers stalled mid catch-up ({missed_mb} MB behind on a), {publish_mb} MB published on b in {seconds:.1f} s")
print(f"node RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB: growth {growth / 2**20:.1f} MiB, "
      f"{growth / streams / 2**20:.2f} MiB per reader (goal: under 2 x the {bound >> 20} MiB bound)")
print(f"slow-consumer closes: {closes:.0f} of {streams}")
for s in readers:
    s.close()
PY
