// The client page: joins with EventSource and shows what arrives.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let source = null;
  let attempts = 0;
  let lastId = "";
  let joined = null;
  let retryTimer = null;

  function setState(name, detail) {
    const badge = $("state");
    badge.className = "badge " + name;
    badge.textContent = detail ? name + " " + detail : name;
    document.body.dataset.state = name;
  }

  function addEvent(text, system) {
    const item = document.createElement("li");
    if (system) item.className = "system";
    item.textContent = new Date().toLocaleTimeString() + "  " + text;
    const list = $("events");
    list.prepend(item);
    while (list.children.length > 200) list.lastChild.remove();
  }

  function parse(data) {
    try { return JSON.parse(data); } catch (error) { return data; }
  }

  function toast(payload) {
    const kinds = ["success", "error", "warning", "info"];
    const kind = kinds.includes(payload.notificationType) ? payload.notificationType : "info";
    const box = document.createElement("div");
    box.className = "toast " + kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    const title = document.createElement("strong");
    title.textContent = payload.title || "Notification";
    const message = document.createElement("span");
    message.textContent = payload.message || "";
    box.append(title, message);
    $("toasts").append(box);
    const duration = Number.isFinite(payload.duration) && payload.duration > 0 ? payload.duration : 5000;
    setTimeout(() => box.remove(), duration);
  }

  function update(payload) {
    const row = document.createElement("tr");
    const cells = [new Date().toLocaleTimeString(), payload.entity ?? "", payload.action ?? "",
      JSON.stringify(payload.payload ?? null)];
    cells.forEach((text, index) => {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      if (index === 3) cell.className = "json";
      row.append(cell);
    });
    $("updates").prepend(row);
  }

  function streamURL() {
    const query = new URLSearchParams();
    if (joined.channels) query.set("channels", joined.channels);
    if (joined.token) query.set("token", joined.token);
    // EventSource resends the last id by itself; after we had to rebuild it, say it here.
    if (lastId) query.set("lastEventId", lastId);
    const text = query.toString();
    return "/api/sse/subscribe/" + encodeURIComponent(joined.clientId) + (text ? "?" + text : "");
  }

  function retryLater() {
    retryTimer = setTimeout(connect, Math.min(10000, 500 * attempts));
  }

  function explainRefusal() {
    const controller = new AbortController();
    fetch(streamURL(), { signal: controller.signal, cache: "no-store" }).then(async (response) => {
      if (response.ok) {
        controller.abort();
        retryLater();
        return;
      }
      const body = await response.json().catch(() => ({}));
      if ([400, 401, 403].includes(response.status)) {
        if (source) source.close();
        setState("closed");
        $("join-error").textContent = "Refused (" + response.status + "): " + (body.error || response.statusText);
        $("join-button").disabled = false;
      } else {
        retryLater();
      }
    }).catch(() => retryLater());
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    setState(attempts === 0 ? "connecting" : "reconnecting", attempts === 0 ? "" : "(attempt " + attempts + ")");
    source = new EventSource(streamURL());
    source.onopen = () => { $("join-error").textContent = ""; };
    source.onerror = () => {
      attempts += 1;
      if (source.readyState === EventSource.CLOSED) {
        // Refused: EventSource gives up and cannot tell why. Ask once more to read the
        // answer: a refusal of this request (bad id, token, channel) ends here; anything
        // else (a draining node, no Redis) is retried.
        setState("reconnecting", "(attempt " + attempts + ")");
        explainRefusal();
      } else {
        setState("reconnecting", "(attempt " + attempts + ")");
      }
    };
    source.addEventListener("__connected", (event) => {
      // The id is the stream's cursor from the start: a reconnect resumes from it.
      if (event.lastEventId) lastId = event.lastEventId;
      const info = parse(event.data);
      const resumed = attempts > 0;
      attempts = 0;
      setState("open");
      $("node").textContent = info.nodeId || "?";
      document.body.dataset.node = info.nodeId || "";
      if (resumed) {
        $("resume").textContent = "Reconnected to " + info.nodeId + (lastId ? ", resuming after " + lastId : "") + ".";
        addEvent("resumed on " + info.nodeId + (lastId ? " after " + lastId : ""), true);
      } else {
        addEvent("connected to " + info.nodeId + " as " + info.clientId + " on " + (info.channels || []).join(", "), true);
      }
    });
    source.addEventListener("__reset", (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
      addEvent("some events could not be replayed: " + event.data, true);
      $("resume").textContent = "Some events published while away could not be replayed.";
    });
    // EventSource hands over only the event names it was asked for (no wildcard): the
    // usual shapes, plus whatever the page was told to show.
    const names = new Set(["notification", "update", "message", ...joined.events]);
    for (const name of names) source.addEventListener(name, (event) => handle(name, event));
  }

  function handle(name, event) {
    if (event.lastEventId) {
      lastId = event.lastEventId;
      $("last-id").textContent = lastId;
    }
    const payload = parse(event.data);
    if (name === "notification" && payload && typeof payload === "object") {
      toast(payload);
      addEvent("notification " + JSON.stringify(payload), false);
    } else if (name === "update" && payload && typeof payload === "object") {
      update(payload);
      addEvent("update " + JSON.stringify(payload), false);
    } else {
      addEvent(name + " " + JSON.stringify(payload), false);
    }
  }

  function eventNames(text) {
    return text.split(",").map((name) => name.trim()).filter((name) => /^[A-Za-z0-9_.:@-]{1,128}$/.test(name));
  }

  function join(clientId, channels, token, events) {
    joined = { clientId, channels, token, events: eventNames(events) };
    attempts = 0;
    lastId = "";
    const share = new URLSearchParams({ clientId });
    if (channels) share.set("channels", channels);
    if (events) share.set("events", events);
    $("share").href = "/client?" + share.toString();
    $("share").textContent = location.origin + "/client?" + share.toString();
    $("join-button").disabled = true;
    $("leave-button").disabled = false;
    connect();
  }

  function leave() {
    clearTimeout(retryTimer);
    if (source) source.close();
    source = null;
    joined = null;
    setState("closed");
    $("node").textContent = "–";
    $("join-button").disabled = false;
    $("leave-button").disabled = true;
  }

  $("join").addEventListener("submit", (event) => {
    event.preventDefault();
    const clientId = $("clientId").value.trim();
    if (!/^[A-Za-z0-9_.@-]{1,100}$/.test(clientId)) {
      $("join-error").textContent = "Use 1-100 of A-Z a-z 0-9 _ . @ - for the name.";
      return;
    }
    join(clientId, $("channels").value.replace(/\s+/g, ""), $("token").value.trim(), $("event-names").value);
  });
  $("leave-button").addEventListener("click", leave);

  fetch("/readyz").then((response) => response.json()).then((ready) => {
    if (ready.access && ready.access.subscribe === "token") $("token-label").hidden = false;
  }).catch(() => {});

  const query = new URLSearchParams(location.search);
  if (query.get("clientId")) {
    $("clientId").value = query.get("clientId");
    $("channels").value = query.get("channels") || "";
    $("token").value = query.get("token") || "";
    $("event-names").value = query.get("events") || "";
    join(query.get("clientId"), (query.get("channels") || "").replace(/\s+/g, ""), query.get("token") || "",
      query.get("events") || "");
  }
})();
