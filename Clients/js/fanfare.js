// Fanfare client: follows a Fanfare SSE stream or run, resumes from its cursor, refreshes tokens.
// No dependencies; works in browsers and Node 20. See README.md and fanfare.d.ts.

const CLOSE_REASONS = ["draining", "unavailable", "token-expired", "undeliverable"];

// A WHATWG "event stream interpretation" parser. feed() takes bytes (or strings); end() at EOF.
export function createParser(onEvent, onRetry, onComment, lastEventId = "") {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let pending = "", cr = false, start = true, data = "", type = "", idBuffer = lastEventId, last = lastEventId;

  const dispatch = () => {
    last = idBuffer;
    if (data === "") return void (type = "");
    const event = { type: type || "message", data: data.slice(0, -1), id: last };
    data = type = "";
    onEvent(event);
  };

  const line = (text) => {
    if (text === "") return dispatch();
    if (text[0] === ":") return void onComment?.(text.slice(text[1] === " " ? 2 : 1));
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? "" : text.slice(text[colon + 1] === " " ? colon + 2 : colon + 1);
    if (field === "data") data += value + "\n";
    else if (field === "event") type = value;
    else if (field === "id") { if (!value.includes("\0")) idBuffer = value; }
    else if (field === "retry" && /^[0-9]+$/.test(value)) onRetry?.(Number(value));
  };

  const push = (text) => {
    if (!text) return;
    if (start) { start = false; if (text[0] === "\uFEFF") text = text.slice(1); }
    if (cr) { cr = false; if (text[0] === "\n") text = text.slice(1); }
    const breaks = /\r\n?|\n/g;
    let pos = 0, match;
    while ((match = breaks.exec(text))) {
      const whole = pending + text.slice(pos, match.index);
      pending = "";
      pos = breaks.lastIndex;
      if (match[0] === "\r" && pos === text.length) cr = true;
      line(whole);
    }
    pending += text.slice(pos);
  };

  return {
    feed: (chunk) => push(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true })),
    end() { push(decoder.decode()); pending = data = type = ""; cr = false; },
    get lastEventId() { return last; },
  };
}

const parseJSON = (text) => {
  try { const value = JSON.parse(text); return value && typeof value === "object" ? value : {}; } catch { return {}; }
};

const retryAfter = (header) => {
  if (!header) return;
  const ms = /^\s*\d+\s*$/.test(header) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return ms >= 0 ? ms : undefined;
};

const required = (value, name) => {
  if (!value) throw new TypeError(`fanfare: ${name} is required`);
  return encodeURIComponent(value);
};

export function connect(options) {
  const { channels } = options;
  return follow(options, `/api/sse/subscribe/${required(options.clientId, "clientId")}`, {
    userId: options.userId,
    channels: Array.isArray(channels) ? channels : channels ? String(channels).split(",") : undefined,
  });
}

export function followRun(options) {
  return follow(options, `/api/sse/runs/${required(options.channel, "channel")}`, { from: options.from });
}

function follow(o, path, params) {
  const fetchFn = o.fetch || ((url, init) => fetch(url, init));
  const ES = o.EventSource !== undefined ? o.EventSource : globalThis.EventSource;
  const method = (o.method || "GET").toUpperCase();
  const transport = o.transport || "auto";
  const useES = transport === "eventsource" ||
    (transport === "auto" && !!ES && method === "GET" && [...new Headers(o.headers)].length === 0);
  if (useES && (!ES || method !== "GET")) throw new TypeError("fanfare: the eventsource transport needs GET and EventSource");
  const random = o.random || Math.random, maxRetry = o.maxRetry ?? 30000;
  const credentials = o.withCredentials ? { credentials: "include" } : {};
  const listeners = new Map();
  let base = o.retry ?? 1000, cursor = o.lastEventId || "", token = o.token, state = "connecting";
  let failures = 0, first = true, closed = false, timer, stop, addType, final = null, count = 0, resolve, reject;
  const done = new Promise((ok, fail) => { resolve = ok; reject = fail; });
  done.catch(() => {});

  const report = (error, fatal, loud) => {
    try { if (o.onError) o.onError(error, { fatal }); else if (loud) console.error(error); } catch (e) { console.error(e); }
  };
  const call = (fn, ...args) => { try { fn?.(...args); } catch (e) { report(e, false, true); } };
  const setState = (next, detail) => { if (next !== state) { state = next; call(o.onStateChange, next, detail); } };

  const url = (es) => {
    const query = new URLSearchParams();
    const add = (key, value) => {
      if (Array.isArray(value)) value = value.join(",");
      if (value != null && value !== "") query.set(key, value);
    };
    if (method === "GET") for (const key in params) add(key, params[key]);
    if (es) { add("lastEventId", cursor); add("token", token); }
    const text = query.toString();
    return (o.baseURL || "").replace(/\/+$/, "") + path + (text ? "?" + text : "");
  };

  const finish = (complete, reason, error) => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    stop?.();
    stop = addType = undefined;
    setState("closed", { reason, error });
    if (error) reject(error); else resolve({ final, events: count, complete, reason });
  };

  const retry = (error, delay) => {
    if (closed) return;
    stop = addType = undefined;
    if (delay == null) {
      const ceiling = Math.min(maxRetry, base * 2 ** failures);
      delay = ceiling / 2 + (random() * ceiling) / 2;
    }
    failures++;
    if (error) report(error, false);
    setState("reconnecting", { delay, attempt: failures, error });
    timer = setTimeout(attempt, delay);
  };

  const handle = (type, data, id) => {
    if (closed) return;
    // A server's heartbeat has no id of its own (the last one is repeated); an event of the
    // application's, whatever its name, always moves the cursor.
    const moved = !!id && id !== cursor;
    if (id) cursor = id;
    failures = 0;
    if (type === "__heartbeat" || (type === "heartbeat" && !moved)) return;
    if (type.startsWith("__")) {
      const info = parseJSON(data);
      if (type === "__connected") call(o.onOpen, info);
      else if (type === "__reset") call(o.onReset, Array.isArray(info.channels) ? info.channels : [], info.reason);
      else if (type === "__end") finish(true, "end");
      else if (type === "__disconnect") {
        call(o.onDisconnect, { reason: info.reason, reconnect: info.reconnect !== false });
        if (info.reconnect === false) finish(false, "disconnect");
      }
      return;
    }
    const event = { type, data, id: cursor, json: () => JSON.parse(data) };
    final = event;
    count++;
    call(o.onEvent, event);
    for (const fn of listeners.get(type) || []) call(fn, event);
  };

  const comment = (text) => {
    text = text.trim();
    if (CLOSE_REASONS.includes(text)) call(o.onDisconnect, { reason: text, reconnect: true });
  };

  const refused = async (response) => {
    const status = response.status;
    if (status === 204) return finish(true, "no-content");
    let body = {};
    try { body = parseJSON(await response.text()); } catch {}
    if (closed) return;
    const message = body.error || `HTTP ${status}` + (status === 200 ? " is not an event stream" : "");
    const error = Object.assign(new Error(message), { status, code: body.code, body });
    if (status === 429 || status === 503) {
      const wait = retryAfter(response.headers.get("retry-after"));
      return retry(error, wait == null ? undefined : wait * (1 + random() / 5));
    }
    if (status >= 500 || (status === 401 && o.getToken)) return retry(error);
    report(error, true);
    finish(false, "error", error);
  };

  const viaFetch = async () => {
    const abort = new AbortController();
    stop = () => abort.abort();
    const headers = new Headers(o.headers);
    headers.set("Accept", "text/event-stream");
    if (token && !headers.has("Authorization")) headers.set("Authorization", "Bearer " + token);
    if (cursor) headers.set("Last-Event-ID", cursor);
    let body;
    if (method === "POST") { headers.set("Content-Type", "application/json"); body = JSON.stringify(params); }
    const response = await fetchFn(url(false), { method, headers, body, signal: abort.signal, ...credentials });
    if (closed) return;
    if (response.status !== 200 || !/^text\/event-stream/i.test(response.headers.get("content-type") || "")) {
      return refused(response);
    }
    setState("open");
    const parser = createParser((e) => handle(e.type, e.data, e.id), (ms) => (base = ms), comment, cursor);
    const reader = response.body.getReader();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (closed) return;
      if (end) break;
      parser.feed(value);
      if (closed) return;
      if (parser.lastEventId) cursor = parser.lastEventId;
    }
    parser.end();
    retry();
  };

  const probe = async (address) => {
    const abort = new AbortController();
    stop = () => abort.abort();
    const response = await fetchFn(address, { headers: { Accept: "text/event-stream" }, signal: abort.signal, ...credentials });
    if (closed) return;
    if (response.status === 200 && /^text\/event-stream/i.test(response.headers.get("content-type") || "")) {
      abort.abort();
      return retry();
    }
    return refused(response);
  };

  const viaEventSource = () => {
    const address = url(true);
    const source = new ES(address, { withCredentials: !!o.withCredentials });
    const types = new Set();
    let opened = false;
    addType = (type) => {
      if (types.has(type)) return;
      types.add(type);
      source.addEventListener(type, (e) => handle(type, e.data, e.lastEventId));
    };
    ["message", "__connected", "__reset", "__disconnect", "__end", ...(o.events || []), ...listeners.keys()].forEach(addType);
    stop = () => source.close();
    source.onopen = () => { opened = true; setState("open"); };
    source.onerror = () => {
      if (closed) return;
      const refusedNow = source.readyState === 2;
      source.close();
      if (opened) return retry();
      if (!refusedNow) return retry(new Error("fanfare: EventSource connection failed"));
      addType = undefined;
      probe(address).catch((e) => retry(e));
    };
  };

  const attempt = async () => {
    timer = undefined;
    if (closed) return;
    setState("connecting");
    try {
      const refresh = o.getToken && (!first || token == null);
      first = false;
      if (refresh) token = await o.getToken();
      if (closed) return;
      await (useES ? viaEventSource() : viaFetch());
    } catch (error) {
      if (!closed) retry(error);
    }
  };

  timer = setTimeout(attempt, 0);

  return {
    get lastEventId() { return cursor; },
    get state() { return state; },
    done,
    close: () => finish(false, "closed"),
    on(type, fn) {
      let set = listeners.get(type);
      if (!set) listeners.set(type, (set = new Set()));
      set.add(fn);
      addType?.(type);
      return () => set.delete(fn);
    },
  };
}
