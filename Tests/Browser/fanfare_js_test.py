#!/usr/bin/env python3
"""Drives fanfare.js (the module every node serves at /fanfare.js) in headless Chromium.

Started by Tests/IntegrationTests/BrowserTests.swift, which brings up Redis and two nodes:
one open node for runs, and one that requires tokens (--jwt-secret, --jwt-leeway-seconds 0)
with a publisher key. Each part runs in a Chromium of its own, at the same time:

- runs: two runs of many `token` events and a final `complete` (published here over HTTP)
  are followed from the start with followRun(), one over EventSource and one over fetch +
  POST; `done` resolves with the final event, every token arrives once and in order, and
  the browser then makes no request at all (Chrome's performance log, which records every
  request the page makes) for --quiet-seconds. A finished run opened later without
  from=start resolves through 204 without reconnecting.
- tokens: connect() with a getToken() that mints an HS256 JWT with WebCrypto, good for 2-3 s,
  once over EventSource and once over fetch; 1,000 events published to each client across
  at least --expiries token expiries (the node closes the stream at each with
  `: token-expired`) arrive once and in order, and getToken() is called once per
  connection.

Exits 0 when every check passed; prints what failed otherwise.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import time
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


class Failure(Exception):
    pass


def log(part, text):
    print(f"[{part}] {text}", flush=True)


def wait_for(what, condition, seconds=10.0, interval=0.05):
    deadline = time.monotonic() + seconds
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Failure:
            raise
        except Exception as error:  # the page may be mid-update
            last_error = error
        time.sleep(interval)
    raise Failure(f"timed out after {seconds}s waiting for {what}" + (f" ({last_error})" if last_error else ""))


def publish(base, body, key=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{base}/api/sse/notify", data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    answers = answer if isinstance(answer, list) else [answer]
    if not all(item.get("ok") for item in answers):
        raise Failure(f"a publish was refused: {answer}")
    return answer


def browser(chromium, chromedriver):
    options = Options()
    options.binary_location = chromium
    for argument in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    ]:
        options.add_argument(argument)
    # Every request the page makes, as the DevTools Network domain reports it.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


class Network:
    """The requests a browser's pages made (Network.requestWillBeSent), kept across reads
    of the performance log (each read empties it)."""

    def __init__(self, driver):
        self.driver = driver
        self.requests = []

    def read(self):
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.requestWillBeSent":
                continue
            params = message["params"]
            self.requests.append({
                "at": params.get("wallTime", entry["timestamp"] / 1000) * 1000,
                "url": params["request"]["url"],
                "method": params["request"]["method"],
                "type": params.get("type", "?"),
            })
        return self.requests

    def since(self, at_ms, contains=""):
        return [r for r in self.read() if r["at"] >= at_ms and contains in r["url"]]


# Loads fanfare.js into the page (window.fanfare) and sets up window.T, where the page keeps
# what each stream saw.
LOAD = """
const done = arguments[arguments.length - 1];
import("/fanfare.js").then((module) => {
  window.fanfare = module;
  window.T = { streams: {} };
  done("loaded " + Object.keys(module).sort().join(","));
}, (error) => done("error " + error));
"""

# Follows a run: arguments name, options (JSON).
FOLLOW_RUN = """
const [name, options] = arguments;
const record = window.T.streams[name] = {
  tokens: [], types: [], opens: 0, errors: [], states: [], result: null, error: null, doneAt: 0, startedAt: Date.now(),
};
const run = window.fanfare.followRun({
  ...options,
  onEvent(event) {
    record.types.push(event.type);
    if (event.type === "token") record.tokens.push(event.json().i);
  },
  onOpen() { record.opens += 1; },
  onError(error, info) { record.errors.push((info.fatal ? "fatal: " : "") + (error.status || "") + " " + error.message); },
  onStateChange(state) { record.states.push(state); },
});
record.stream = run;
run.done.then((result) => {
  record.doneAt = Date.now();
  const final = result.final && { type: result.final.type, data: result.final.data, id: result.final.id };
  record.result = { final, events: result.events, complete: result.complete, reason: result.reason };
}, (error) => { record.doneAt = Date.now(); record.error = String(error && error.message || error); });
return record.startedAt;
"""

# What the page saw on a stream, without the stream object.
READ = """
const record = window.T.streams[arguments[0]];
const { stream, ...rest } = record;
return JSON.parse(JSON.stringify({ ...rest, state: stream.state, lastEventId: stream.lastEventId }));
"""

# A stream to a client whose getToken() mints a JWT with WebCrypto: arguments name, options,
# secret, token lifetime in seconds. The token's exp is floor(now) + lifetime, so it is good
# for lifetime-1 to lifetime seconds.
CONNECT_WITH_TOKENS = """
const [name, options, secret, lifetime] = arguments;
const done = arguments[arguments.length - 1];
const encoder = new TextEncoder();
const base64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
const part = (value) => base64url(encoder.encode(JSON.stringify(value)));
crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
  .then((key) => {
    const record = window.T.streams[name] = {
      seqs: [], calls: 0, exps: [], opens: 0, openedAt: [], expired: 0, closes: [], errors: [], states: [],
      startedAt: Date.now(),
    };
    const stream = window.fanfare.connect({
      ...options,
      async getToken() {
        record.calls += 1;
        const exp = Math.floor(Date.now() / 1000) + lifetime;
        record.exps.push(exp);
        const unsigned = part({ alg: "HS256", typ: "JWT" }) + "." +
          part({ sub: "js-" + options.clientId, channels: ["client:" + options.clientId], exp });
        const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(unsigned));
        return unsigned + "." + base64url(signature);
      },
      onEvent(event) { record.seqs.push(event.json().seq); },
      onOpen() { record.opens += 1; record.openedAt.push(Date.now()); },
      onDisconnect(info) { if (info.reason === "token-expired") record.expired += 1; },
      onError(error, info) { record.errors.push((info.fatal ? "fatal: " : "") + (error.status || "") + " " + error.message); },
      onStateChange(state) {
        record.states.push(state);
        // A stream that was open ended: when, and the exp of the token it was opened with.
        if (state === "reconnecting" && record.opens > record.closes.length) {
          record.closes.push({ at: Date.now(), exp: record.exps[record.exps.length - 1] });
        }
      },
    });
    record.stream = stream;
    done("started");
  }, (error) => done("error " + error));
"""


def load_module(driver, base):
    driver.get(f"{base}/healthz")
    answer = driver.execute_async_script(LOAD)
    if not answer.startswith("loaded") or "connect" not in answer or "followRun" not in answer:
        raise Failure(f"importing /fanfare.js failed: {answer}")


def check_run(part, record, count, expect_final):
    if record["error"]:
        raise Failure(f"{part}: done rejected: {record['error']}")
    result = record["result"]
    if not result or result["reason"] != "end" or not result["complete"]:
        raise Failure(f"{part}: done did not resolve with the run's end: {result}")
    final = result["final"]
    if not final or final["type"] != "complete" or json.loads(final["data"]) != expect_final:
        raise Failure(f"{part}: done's final event is {final}, not the complete event")
    if record["tokens"] != list(range(1, count + 1)):
        tokens = record["tokens"]
        raise Failure(f"{part}: {len(tokens)} tokens, not 1...{count} in order (first {tokens[:5]}, last {tokens[-5:]})")
    if record["types"] != ["token"] * count + ["complete"]:
        raise Failure(f"{part}: unexpected event types besides {count} tokens and the final complete")
    if result["events"] != count + 1:
        raise Failure(f"{part}: done counts {result['events']} events, not {count + 1}")
    if record["errors"]:
        raise Failure(f"{part}: errors reported: {record['errors']}")


def runs_part(arguments):
    """Runs over EventSource and over fetch + POST; the silence after them; a finished run."""
    part = "runs"
    base = arguments.run_url
    driver = browser(arguments.chromium, arguments.chromedriver)
    try:
        network = Network(driver)
        load_module(driver, base)
        suffix = uuid.uuid4().hex[:8]
        channels = {"eventsource": f"run-es-{suffix}", "fetch": f"run-fetch-{suffix}"}
        options = {
            "eventsource": {"channel": channels["eventsource"], "from": "start", "events": ["token", "complete"]},
            "fetch": {"channel": channels["fetch"], "from": "start", "transport": "fetch", "method": "POST"},
        }
        before, during = arguments.run_tokens // 2, arguments.run_tokens - arguments.run_tokens // 2

        def tokens(first, last, batch=50):
            for start in range(first, last + 1, batch):
                publish(base, [{"channel": channel, "event": "token", "payload": {"i": i, "text": f"token {i}"}}
                               for i in range(start, min(last, start + batch - 1) + 1)
                               for channel in channels.values()])

        # Half the run is history when the browser starts following, half arrives live.
        tokens(1, before)
        started = time.monotonic()
        for name in channels:
            driver.execute_script(FOLLOW_RUN, name, options[name])
        wait_for("both runs to open", lambda: all(
            driver.execute_script(READ, name)["opens"] >= 1 for name in channels))
        for start in range(before + 1, before + during + 1, 25):
            tokens(start, min(before + during, start + 24), batch=25)
            time.sleep(0.01)
        expect_final = {"status": "complete", "tokens": arguments.run_tokens}
        publish(base, [{"channel": channel, "event": "complete", "payload": expect_final, "final": True}
                       for channel in channels.values()])
        wait_for("both runs' done", lambda: all(
            (lambda r: r["result"] or r["error"])(driver.execute_script(READ, name)) for name in channels),
            seconds=20)
        records = {name: driver.execute_script(READ, name) for name in channels}
        for name, record in records.items():
            check_run(f"{part} {name}", record, arguments.run_tokens, expect_final)
            requests = [r for r in network.read() if f"/api/sse/runs/{channels[name]}" in r["url"]]
            log(part, f"{name}: done in {(record['doneAt'] - record['startedAt']) / 1000:.2f} s with "
                      f"{record['result']['events']} events ({arguments.run_tokens} tokens in order + complete), "
                      f"{record['opens']} connection(s), {len(requests)} request(s): "
                      + ", ".join(f"{r['method']} {r['type']}" for r in requests))
        log(part, f"both runs done {time.monotonic() - started:.2f} s after following began")

        # Nothing more: no request of any kind while the browser stays on the page.
        done_at = min(record["doneAt"] for record in records.values())
        time.sleep(arguments.quiet_seconds)
        after = network.since(done_at)
        if after:
            raise Failure(f"{part}: requests after the runs were done: {after}")
        states = {name: driver.execute_script(READ, name)["state"] for name in channels}
        if set(states.values()) != {"closed"}:
            raise Failure(f"{part}: streams not closed after done: {states}")
        log(part, f"no request in the {arguments.quiet_seconds} s after both runs were done; streams {states}")

        # A finished run opened later (no from=start): 204, done at once, no reconnect.
        for name, extra, expected in [("eventsource", {"events": ["token", "complete"]}, 2),
                                      ("fetch", {"transport": "fetch", "method": "POST"}, 1)]:
            late = f"late-{name}"
            opened_at = driver.execute_script(FOLLOW_RUN, late, {"channel": channels[name], **extra})
            wait_for(f"the finished run's done ({name})",
                     lambda: (lambda r: r["result"] or r["error"])(driver.execute_script(READ, late)), seconds=10)
            record = driver.execute_script(READ, late)
            result = record["result"]
            if record["error"] or result != {"final": None, "events": 0, "complete": True, "reason": "no-content"}:
                raise Failure(f"{part}: the finished run ({name}) did not resolve as no-content: {record}")
            time.sleep(arguments.late_quiet_seconds)
            requests = network.since(opened_at)
            run_requests = [r for r in requests if f"/api/sse/runs/{channels[name]}" in r["url"]]
            # EventSource cannot read a refusal's status: one fetch of the same URL reads the 204.
            if len(run_requests) != expected or len(requests) != expected:
                raise Failure(f"{part}: the finished run ({name}) made {len(requests)} requests, "
                              f"not {expected}: {requests}")
            log(part, f"finished run over {name}: done in {(record['doneAt'] - opened_at) / 1000:.3f} s, "
                      f"reason no-content, {len(requests)} request(s) ("
                      + ", ".join(f"{r['method']} {r['type']}" for r in requests)
                      + f"), none in the {arguments.late_quiet_seconds} s after")
        return "runs passed"
    except Failure:
        try:
            for entry in driver.get_log("browser"):
                log(part, f"console: {entry}")
        except Exception:
            pass
        raise
    finally:
        driver.quit()


def tokens_part(arguments):
    """1,000 events to a client across at least --expiries token expiries, per transport."""
    part = "tokens"
    base = arguments.token_url
    driver = browser(arguments.chromium, arguments.chromedriver)
    try:
        network = Network(driver)
        load_module(driver, base)
        suffix = uuid.uuid4().hex[:8]
        clients = {"eventsource": f"tok-es-{suffix}", "fetch": f"tok-fetch-{suffix}"}
        options = {
            "eventsource": {"clientId": clients["eventsource"], "events": ["tick"]},
            "fetch": {"clientId": clients["fetch"], "transport": "fetch"},
        }
        started = time.monotonic()
        for name in clients:
            answer = driver.execute_async_script(CONNECT_WITH_TOKENS, name, options[name], arguments.jwt_secret,
                                                 arguments.token_seconds)
            if answer != "started":
                raise Failure(f"{part}: could not start the {name} stream: {answer}")
        wait_for("both token streams to open",
                 lambda: all(driver.execute_script(READ, name)["opens"] >= 1 for name in clients))

        def expiries(record, name):
            # Over fetch the page sees each `: token-expired`; EventSource hides comments, so
            # there it is each close of an open stream.
            return record["expired"] if name == "fetch" else len(record["closes"])

        # Publish the events spread over the expiries: by the time both streams have seen k
        # expiries, about k/expiries of the events are out.
        total, wanted = arguments.token_events, arguments.expiries
        published, period, last_count, last_change = 0, 4.0, 0, time.monotonic()
        deadline = time.monotonic() + 120
        while published < total:
            if time.monotonic() > deadline:
                raise Failure(f"{part}: publishing did not finish in time ({published} of {total})")
            records = {name: driver.execute_script(READ, name) for name in clients}
            count = min(expiries(records[name], name) for name in clients)
            now = time.monotonic()
            if count != last_count:
                if count > 0:
                    period = (now - started) / count
                last_count, last_change = count, now
            progress = min(1.0, (count + min(0.95, (now - last_change) / period)) / wanted)
            target = min(total, max(published, int(total * progress)))
            while published < target:
                batch = range(published + 1, min(target, published + 50) + 1)
                publish(base, [{"clientId": client, "event": "tick", "payload": {"seq": seq}}
                               for seq in batch for client in clients.values()], key=arguments.publisher_key)
                published = batch[-1]
            time.sleep(0.1)
        log(part, f"published {total} events to each client in {time.monotonic() - started:.1f} s")

        def finished():
            records = {name: driver.execute_script(READ, name) for name in clients}
            return all(len(r["seqs"]) >= total and expiries(r, name) >= wanted for name, r in records.items())

        wait_for(f"{total} events and {wanted} expiries on both streams", finished, seconds=40, interval=0.2)
        for name in clients:
            driver.execute_script("window.T.streams[arguments[0]].stream.close()", name)
        for name in clients:
            record = driver.execute_script(READ, name)
            where = f"{part} {name}"
            seqs = record["seqs"]
            if seqs != list(range(1, total + 1)):
                missing = sorted(set(range(1, total + 1)) - set(seqs))
                repeated = len(seqs) - len(set(seqs))
                raise Failure(f"{where}: {len(seqs)} events, {len(missing)} missing (first {missing[:5]}), "
                              f"{repeated} repeated, in order: {seqs == sorted(seqs)}")
            if record["calls"] != record["opens"]:
                raise Failure(f"{where}: getToken() was called {record['calls']} times for {record['opens']} "
                              f"connections (errors: {record['errors']})")
            if record["opens"] < wanted + 1:
                raise Failure(f"{where}: only {record['opens']} connections")
            if record["errors"]:
                raise Failure(f"{where}: errors reported: {record['errors']}")
            # Each open stream ended when its token expired (the node closes at exp + 0 s).
            delays = [close["at"] - close["exp"] * 1000 for close in record["closes"]]
            late = [close for close, delay in zip(record["closes"], delays) if not -50 <= delay <= 1500]
            if late:
                raise Failure(f"{where}: streams that did not end at their token's exp: {late[:5]}")
            # What went over the network: one request per getToken() call, each with a
            # token and, after the first, the cursor (no request EventSource made by itself).
            requests = [r for r in network.read() if f"/api/sse/subscribe/{clients[name]}" in r["url"]]
            if len(requests) != record["calls"]:
                raise Failure(f"{where}: {len(requests)} requests for {record['calls']} getToken() calls: "
                              + ", ".join(f"{r['method']} {r['type']}" for r in requests))
            if name == "eventsource" and not all("token=" in r["url"] and ("lastEventId=" in r["url"]) == (i > 0)
                                                 for i, r in enumerate(requests)):
                raise Failure(f"{where}: requests without a token or the cursor: {[r['url'] for r in requests]}")
            lifetimes = [(close["exp"] * 1000 - opened) / 1000 for close, opened in zip(record["closes"],
                                                                                        record["openedAt"])]
            log(part, f"{name}: {len(seqs)} events in order, none missing or repeated; "
                      f"{record['opens']} connections, {len(record['closes'])} ends at the token's exp, "
                      f"{record['expired']} ': token-expired' comments seen, getToken() called {record['calls']} "
                      f"times, {len(requests)} requests; tokens lived {min(lifetimes):.2f}-{max(lifetimes):.2f} s "
                      f"after the open; streams ended {min(delays):.0f}-{max(delays):.0f} ms after exp")
        log(part, f"took {time.monotonic() - started:.1f} s")
        return "tokens passed"
    except Failure:
        try:
            for entry in driver.get_log("browser"):
                log(part, f"console: {entry}")
        except Exception:
            pass
        raise
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-url", required=True, help="an open node, for runs")
    parser.add_argument("--token-url", required=True, help="a node with --jwt-secret and --jwt-leeway-seconds 0")
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--publisher-key", required=True, help="the token node's publisher key")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--run-tokens", type=int, default=600)
    parser.add_argument("--quiet-seconds", type=float, default=30)
    parser.add_argument("--late-quiet-seconds", type=float, default=3)
    parser.add_argument("--token-events", type=int, default=1000)
    parser.add_argument("--expiries", type=int, default=20)
    parser.add_argument("--token-seconds", type=int, default=3, help="exp is floor(now) + this")
    arguments = parser.parse_args()
    started = time.monotonic()
    failed = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {pool.submit(runs_part, arguments): "runs", pool.submit(tokens_part, arguments): "tokens"}
        for future in concurrent.futures.as_completed(futures):
            try:
                log(futures[future], future.result())
            except Failure as failure:
                failed = True
                print(f"FAILED: {failure}", flush=True)
            except Exception as error:
                failed = True
                print(f"FAILED: {futures[future]}: {type(error).__name__}: {error}", flush=True)
    if failed:
        return 1
    print(f"fanfare.js checks passed in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
