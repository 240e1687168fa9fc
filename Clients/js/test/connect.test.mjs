import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { connect, followRun } from "../fanfare.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate, what, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function within(promise, what, ms = 3000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sse = (res) => res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
const frame = (event, data, id) => (id ? `id: ${id}\n` : "") + (event ? `event: ${event}\n` : "") + `data: ${data}\n\n`;
const refuse = (res, status, message, headers = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ code: status, error: message, ok: false }));
};

// A real HTTP server on 127.0.0.1:0; `handler(req, res, record, n)` answers request n (1-based).
async function withServer(handler, body) {
  const requests = [];
  const streams = [];
  const server = http.createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    const record = {
      method: req.method,
      url: new URL(req.url, "http://127.0.0.1"),
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    requests.push(record);
    try {
      await handler(req, res, record, requests.length);
    } catch (error) {
      res.destroy(error);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  try {
    await body({ baseURL, requests, track: (s) => (streams.push(s), s) });
  } finally {
    for (const s of streams) s.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

test("a GET stream delivers user events only and resumes with Last-Event-ID", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    sse(res);
    if (n === 1) {
      res.write("retry: 10\n\n");
      res.write(frame("__connected", JSON.stringify({ clientId: "alice", nodeId: "n1", channels: ["news"] }), "c0"));
      res.write(frame("token", JSON.stringify({ t: "a" }), "c1"));
      res.write(frame("__heartbeat", "{}"));
      res.write(": heartbeat\n\n");
      res.write(frame("heartbeat", "{}"));
      // An application's own event named heartbeat has an id of its own: it is delivered.
      res.write(frame("heartbeat", '{"mine":true}', "c1b"));
      res.write(frame("__reset", JSON.stringify({ channels: ["news", "sport"], reason: "trimmed" }), "c2"));
      res.write(frame("__reset", "not json", "c3"));
      res.write(frame(null, "plain", "c4"));
      res.write("data: a\r");
      setTimeout(() => res.end("\ndata: b\r\n\r\n"), 20);
    } else {
      res.write(frame("__connected", "{}", "c9"));
    }
  }, async ({ baseURL, requests, track }) => {
    const events = [], tokens = [], resets = [], opens = [], errors = [];
    const stream = track(connect({
      baseURL, clientId: "alice", userId: "u1", channels: ["news", "sport"], token: "t0",
      onEvent(event) {
        events.push(event);
        if (event.type === "token") throw new Error("a callback bug");
      },
      onOpen: (info) => opens.push(info),
      onReset: (channels, reason) => resets.push([channels, reason]),
      onError: (error, info) => errors.push([error.message, info.fatal]),
    }));
    stream.on("token", (event) => tokens.push(event.json()));
    assert.equal(stream.state, "connecting");
    await waitFor(() => requests.length === 2, "the reconnect");
    const [first, second] = requests;
    assert.equal(first.method, "GET");
    assert.equal(first.url.pathname, "/api/sse/subscribe/alice");
    assert.equal(first.url.searchParams.get("userId"), "u1");
    assert.equal(first.url.searchParams.get("channels"), "news,sport");
    assert.equal(first.url.searchParams.get("token"), null);
    assert.equal(first.headers.authorization, "Bearer t0");
    assert.equal(first.headers.accept, "text/event-stream");
    assert.equal(first.headers["last-event-id"], undefined);
    assert.equal(second.headers["last-event-id"], "c4");
    assert.equal(second.headers.authorization, "Bearer t0");
    assert.deepEqual(events.map((e) => [e.type, e.data, e.id]),
      [["token", '{"t":"a"}', "c1"], ["heartbeat", '{"mine":true}', "c1b"], ["message", "plain", "c4"],
        ["message", "a\nb", "c4"]]);
    assert.deepEqual(tokens, [{ t: "a" }]);
    assert.deepEqual(opens[0], { clientId: "alice", nodeId: "n1", channels: ["news"] });
    assert.deepEqual(resets, [[["news", "sport"], "trimmed"], [[], undefined]]);
    assert.deepEqual(errors, [["a callback bug", false]]);
    await waitFor(() => stream.lastEventId === "c9", "the new cursor");
    assert.equal(stream.state, "open");
    assert.deepEqual(opens, [opens[0], {}]);
    stream.close();
    assert.equal(stream.state, "closed");
    assert.deepEqual(await within(stream.done, "done"), { final: events[3], events: 4, complete: false, reason: "closed" });
  });
});

test("a POST stream sends a JSON body and the given cursor", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    sse(res);
    res.write(frame("__connected", "{}", "c1"));
  }, async ({ baseURL, requests, track }) => {
    const stream = track(connect({
      baseURL: baseURL + "/", clientId: "bob", userId: "u2", channels: "a,b", method: "POST",
      lastEventId: "c0", headers: { "X-Trace": "1" },
    }));
    await waitFor(() => stream.lastEventId === "c1", "the stream");
    const [request] = requests;
    assert.equal(request.method, "POST");
    assert.equal(request.url.pathname, "/api/sse/subscribe/bob");
    assert.equal(request.url.search, "");
    assert.deepEqual(request.body, { userId: "u2", channels: ["a", "b"] });
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.headers["last-event-id"], "c0");
    assert.equal(request.headers["x-trace"], "1");
    assert.equal(request.headers.authorization, undefined);
  });
});

test("__disconnect with reconnect:false closes for good", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    sse(res);
    res.write("retry: 10\n\n");
    res.write(frame("__connected", "{}", "c1"));
    res.write(frame("__disconnect", JSON.stringify({ reason: "kicked", reconnect: false })));
    setTimeout(() => res.end(), 20);
  }, async ({ baseURL, requests, track }) => {
    const disconnects = [];
    const stream = track(connect({ baseURL, clientId: "c", retry: 10, onDisconnect: (d) => disconnects.push(d) }));
    const result = await within(stream.done, "done");
    assert.deepEqual(result, { final: null, events: 0, complete: false, reason: "disconnect" });
    assert.deepEqual(disconnects, [{ reason: "kicked", reconnect: false }]);
    assert.equal(stream.state, "closed");
    await sleep(200);
    assert.equal(requests.length, 1);
  });
});

test("__disconnect with reconnect:true reconnects from the cursor", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    sse(res);
    res.write("retry: 10\n\n");
    res.write(frame("__connected", "{}", `c${n}`));
    if (n === 1) res.end(frame("__disconnect", JSON.stringify({ reason: "moved", reconnect: true })));
  }, async ({ baseURL, requests, track }) => {
    const disconnects = [];
    track(connect({ baseURL, clientId: "c", onDisconnect: (d) => disconnects.push(d) }));
    await waitFor(() => requests.length === 2, "the reconnect");
    assert.equal(requests[1].headers["last-event-id"], "c1");
    assert.deepEqual(disconnects, [{ reason: "moved", reconnect: true }]);
  });
});

test("a run resolves on __end with its final event, across a reconnect, and asks nothing more", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    sse(res);
    res.write("retry: 10\n\n");
    if (n === 1) {
      res.write(frame("__connected", "{}", "r0"));
      res.write(frame("token", '"a"', "r1"));
      res.end(frame("token", '"b"', "r2"));
    } else {
      res.write(frame("__connected", "{}", "r2"));
      res.write(frame("done", '{"ok":true}', "r3"));
      res.write(frame("__end", JSON.stringify({ channel: "run-42" }), "r4"));
      // The response stays open: the client must let go by itself.
    }
  }, async ({ baseURL, requests, track }) => {
    const seen = [];
    const run = track(followRun({ baseURL, channel: "run-42", from: "start", token: "t", onEvent: (e) => seen.push(e.data) }));
    const result = await within(run.done, "the end of the run");
    assert.equal(result.complete, true);
    assert.equal(result.reason, "end");
    assert.equal(result.events, 3);
    assert.deepEqual([result.final.type, result.final.data, result.final.id], ["done", '{"ok":true}', "r3"]);
    assert.deepEqual(result.final.json(), { ok: true });
    assert.deepEqual(seen, ['"a"', '"b"', '{"ok":true}']);
    assert.equal(requests[0].url.pathname, "/api/sse/runs/run-42");
    assert.equal(requests[0].url.searchParams.get("from"), "start");
    assert.equal(requests[1].url.searchParams.get("from"), "start");
    assert.equal(requests[1].headers["last-event-id"], "r2");
    assert.equal(run.state, "closed");
    await sleep(200);
    assert.equal(requests.length, 2);
  });
});

test("a run answered 204 resolves with nothing and never reconnects", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    res.writeHead(204);
    res.end();
  }, async ({ baseURL, requests, track }) => {
    const run = track(followRun({ baseURL, channel: "old", method: "POST", from: "start", lastEventId: "x9", retry: 10 }));
    assert.deepEqual(await within(run.done, "done"), { final: null, events: 0, complete: true, reason: "no-content" });
    assert.deepEqual(requests[0].body, { from: "start" });
    assert.equal(requests[0].headers["last-event-id"], "x9");
    await sleep(200);
    assert.equal(requests.length, 1);
  });
});

test("401: getToken is called once and the retry carries the new token", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    if (req.headers.authorization !== "Bearer fresh-1") return refuse(res, 401, "token expired");
    sse(res);
    res.write(frame("__connected", "{}", "c1"));
  }, async ({ baseURL, requests, track }) => {
    let calls = 0;
    const errors = [];
    const stream = track(connect({
      baseURL, clientId: "c", token: "stale", retry: 10,
      getToken: async () => `fresh-${++calls}`,
      onError: (error, info) => errors.push([error.status, error.code, error.message, info.fatal]),
    }));
    await waitFor(() => stream.lastEventId === "c1", "the stream");
    assert.equal(calls, 1);
    assert.deepEqual(requests.map((r) => r.headers.authorization), ["Bearer stale", "Bearer fresh-1"]);
    assert.deepEqual(errors, [[401, 401, "token expired", false]]);
  });
});

test("401 without getToken is fatal", { timeout: 10000 }, async () => {
  await withServer((req, res) => refuse(res, 401, "no token"), async ({ baseURL, requests, track }) => {
    const stream = track(connect({ baseURL, clientId: "c", retry: 10 }));
    await assert.rejects(within(stream.done, "done"), { status: 401, message: "no token" });
    await sleep(100);
    assert.equal(requests.length, 1);
  });
});

test("getToken runs before the first connect when no token is given", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    sse(res);
    res.write(frame("__connected", "{}", "c1"));
  }, async ({ baseURL, requests, track }) => {
    let calls = 0;
    const stream = track(connect({ baseURL, clientId: "c", getToken: () => `t${++calls}` }));
    await waitFor(() => stream.lastEventId === "c1", "the stream");
    assert.equal(calls, 1);
    assert.equal(requests[0].headers.authorization, "Bearer t1");
  });
});

test("a token-expired close reconnects after about its retry, calling getToken exactly once", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    sse(res);
    res.write("retry: 2000\n\n");
    res.write(frame("__connected", "{}", `c${n}`));
    if (n === 1) {
      res.write(frame("token", "x", "e1"));
      res.end("retry: 40\n: token-expired\n\n");
    }
  }, async ({ baseURL, requests, track }) => {
    let calls = 0;
    const states = [], disconnects = [];
    const stream = track(connect({
      baseURL, clientId: "c", token: "t0",
      getToken: async () => { calls++; await sleep(5); return `t${calls}`; },
      onStateChange: (state, detail) => states.push([state, detail?.delay]),
      onDisconnect: (d) => disconnects.push(d),
    }));
    await waitFor(() => stream.lastEventId === "c2", "the reconnected stream");
    assert.equal(calls, 1);
    assert.equal(requests[1].headers.authorization, "Bearer t1");
    assert.equal(requests[1].headers["last-event-id"], "e1");
    assert.deepEqual(disconnects, [{ reason: "token-expired", reconnect: true }]);
    const [, delay] = states.find(([state]) => state === "reconnecting");
    assert.ok(delay >= 20 && delay <= 40, `delay ${delay}`);
    await sleep(100);
    assert.equal(calls, 1);
    assert.equal(requests.length, 2);
  });
});

test("jittered back-off grows, is capped, and resets after a successful open", { timeout: 10000 }, async () => {
  let healthy = false;
  await withServer((req, res) => {
    if (!healthy) return refuse(res, 503, "no redis");
    sse(res);
    res.end(frame("__connected", "{}", "c1"));
  }, async ({ baseURL, requests, track }) => {
    for (const [r, expected] of [[1, [10, 20, 40, 80, 80, 80]], [0, [5, 10, 20, 40, 40, 40]]]) {
      healthy = false;
      requests.length = 0;
      const delays = [];
      const stream = track(connect({
        baseURL, clientId: "c", retry: 10, maxRetry: 80, random: () => r,
        onStateChange: (state, detail) => state === "reconnecting" && delays.push(detail.delay),
      }));
      await waitFor(() => delays.length === 6, "six retries");
      assert.deepEqual(delays, expected);
      assert.equal(requests.length, 6);
      healthy = true;
      await waitFor(() => delays.length === 8, "the retry after a clean end");
      assert.equal(delays[7], expected[0]);
      stream.close();
    }
  });
});

test("429 waits for Retry-After with jitter", { timeout: 10000 }, async () => {
  await withServer((req, res) => refuse(res, 429, "slow down", { "retry-after": "2" }), async ({ baseURL, requests, track }) => {
    const retries = [];
    const stream = track(connect({
      baseURL, clientId: "c", retry: 10, random: () => 0.5,
      onStateChange: (state, detail) => state === "reconnecting" && retries.push([detail.delay, detail.error.status]),
    }));
    await waitFor(() => retries.length === 1, "the 429 retry");
    assert.deepEqual(retries, [[2000 * 1.1, 429]]);
    stream.close();
    await sleep(50);
    assert.equal(requests.length, 1);
  });
});

test("a 500 retries with back-off, then a 503 honours Retry-After", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    if (n === 1) return refuse(res, 500, "oops");
    refuse(res, 503, "busy", { "retry-after": "1" });
  }, async ({ baseURL, requests, track }) => {
    const delays = [];
    const stream = track(connect({
      baseURL, clientId: "c", retry: 10, random: () => 0,
      onStateChange: (state, detail) => state === "reconnecting" && delays.push([detail.delay, detail.error.status]),
    }));
    await waitFor(() => delays.length === 2, "two retries");
    assert.deepEqual(delays, [[5, 500], [1000, 503]]);
    stream.close();
  });
});

for (const status of [400, 403, 404, 405, 409, 413]) {
  test(`a ${status} is fatal`, { timeout: 10000 }, async () => {
    await withServer((req, res) => refuse(res, status, `refused ${status}`), async ({ baseURL, requests, track }) => {
      const errors = [];
      let calls = 0;
      const stream = track(connect({
        baseURL, clientId: "c", token: "t", retry: 10, getToken: () => `t${++calls}`,
        onError: (error, info) => errors.push([error.status, error.code, error.message, info.fatal]),
      }));
      await assert.rejects(within(stream.done, "done"), { status, code: status, message: `refused ${status}` });
      assert.deepEqual(errors, [[status, status, `refused ${status}`, true]]);
      assert.equal(stream.state, "closed");
      await sleep(100);
      assert.equal(requests.length, 1);
      assert.equal(calls, 0);
    });
  });
}

test("a 200 that is not an event stream is fatal", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html></html>");
  }, async ({ baseURL, requests, track }) => {
    const stream = track(connect({ baseURL, clientId: "c", retry: 10 }));
    await assert.rejects(within(stream.done, "done"), { status: 200 });
    assert.equal(requests.length, 1);
  });
});

test("a network error is retried", { timeout: 10000 }, async () => {
  await withServer((req, res, record, n) => {
    if (n === 1) return res.socket.destroy();
    sse(res);
    res.write(frame("__connected", "{}", "c1"));
  }, async ({ baseURL, requests, track }) => {
    const errors = [];
    const stream = track(connect({ baseURL, clientId: "c", retry: 10, onError: (e, info) => errors.push(info.fatal) }));
    await waitFor(() => stream.lastEventId === "c1", "the stream");
    assert.equal(requests.length, 2);
    assert.deepEqual(errors, [false]);
  });
});

test("close() before the first request sends nothing", { timeout: 10000 }, async () => {
  await withServer((req, res) => refuse(res, 500, "x"), async ({ baseURL, requests }) => {
    const stream = connect({ baseURL, clientId: "c" });
    stream.close();
    await sleep(100);
    assert.equal(requests.length, 0);
    assert.equal((await within(stream.done, "done")).reason, "closed");
  });
});

// A scripted EventSource: the tests drive it; its probe requests go to the real server.
class FakeEventSource {
  static made = [];
  constructor(url, init) {
    this.url = new URL(url);
    this.init = init;
    this.readyState = 0;
    this.listeners = {};
    FakeEventSource.made.push(this);
  }
  addEventListener(type, fn) { (this.listeners[type] ??= []).push(fn); }
  emit(type, data, lastEventId = "") { for (const fn of this.listeners[type] || []) fn({ type, data, lastEventId }); }
  close() { this.readyState = 2; this.closed = true; }
}

test("the EventSource transport puts the cursor and token in the query and rebuilds on reconnect", { timeout: 10000 }, async () => {
  await withServer((req, res) => refuse(res, 403, "not for you"), async ({ baseURL, requests, track }) => {
    FakeEventSource.made = [];
    let calls = 0;
    const events = [];
    const stream = track(connect({
      baseURL, clientId: "a b", channels: ["x", "y"], token: "t0", getToken: () => `t${++calls}`,
      EventSource: FakeEventSource, events: ["custom"], retry: 10, onEvent: (e) => events.push([e.type, e.data, e.id]),
    }));
    const heard = [];
    stream.on("token", (e) => heard.push(e.data));
    await waitFor(() => FakeEventSource.made.length === 1, "the EventSource");
    const first = FakeEventSource.made[0];
    assert.equal(first.url.pathname, "/api/sse/subscribe/a%20b");
    assert.equal(first.url.searchParams.get("channels"), "x,y");
    assert.equal(first.url.searchParams.get("token"), "t0");
    assert.equal(first.url.searchParams.get("lastEventId"), null);
    first.readyState = 1;
    first.onopen();
    assert.equal(stream.state, "open");
    first.emit("__connected", "{}", "c0");
    first.emit("message", "hi", "c1");
    first.emit("custom", "c", "c2");
    first.emit("token", "tok", "c3");
    stream.on("late", () => {});
    assert.ok(first.listeners.late);
    first.readyState = 0;
    first.onerror();
    assert.ok(first.closed);
    await waitFor(() => FakeEventSource.made.length === 2, "the rebuilt EventSource");
    const second = FakeEventSource.made[1];
    assert.equal(second.url.searchParams.get("lastEventId"), "c3");
    assert.equal(second.url.searchParams.get("token"), "t1");
    assert.equal(calls, 1);
    assert.deepEqual(events, [["message", "hi", "c1"], ["custom", "c", "c2"], ["token", "tok", "c3"]]);
    assert.deepEqual(heard, ["tok"]);
    assert.equal(requests.length, 0);
    // Refused before opening: a probe request reads why; a 403 is fatal.
    second.readyState = 2;
    second.onerror();
    await assert.rejects(within(stream.done, "done"), { status: 403 });
    assert.equal(requests.length, 1);
    assert.equal(requests[0].url.searchParams.get("lastEventId"), "c3");
    assert.equal(requests[0].url.searchParams.get("token"), "t1");
    assert.equal(FakeEventSource.made.length, 2);
  });
});

test("an EventSource run refused with 204 resolves; __end over EventSource resolves", { timeout: 10000 }, async () => {
  await withServer((req, res) => {
    res.writeHead(204);
    res.end();
  }, async ({ baseURL, requests, track }) => {
    FakeEventSource.made = [];
    const run = track(followRun({ baseURL, channel: "r", from: "start", EventSource: FakeEventSource }));
    await waitFor(() => FakeEventSource.made.length === 1, "the EventSource");
    FakeEventSource.made[0].readyState = 2;
    FakeEventSource.made[0].onerror();
    assert.deepEqual(await within(run.done, "done"), { final: null, events: 0, complete: true, reason: "no-content" });
    assert.equal(requests.length, 1);

    const run2 = track(followRun({ baseURL, channel: "r", EventSource: FakeEventSource }));
    await waitFor(() => FakeEventSource.made.length === 2, "the second EventSource");
    const source = FakeEventSource.made[1];
    source.onopen();
    source.emit("message", "last", "e1");
    source.emit("__end", '{"channel":"r"}', "e2");
    const result = await within(run2.done, "done");
    assert.equal(result.final.data, "last");
    assert.ok(source.closed);
    await sleep(100);
    assert.equal(FakeEventSource.made.length, 2);
    assert.equal(requests.length, 1);
  });
});
