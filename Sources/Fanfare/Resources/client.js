// The client page: joins a stream with fanfare.js (which resumes from the stream's cursor,
// backs off, and tells a refusal from a failure) and shows what arrives.
import { connect } from "/fanfare.js";

const $ = (id) => document.getElementById(id);
let stream = null;
// __connected events on the joined stream: a later one is a resume.
let opens = 0;
// Failed attempts in a row, as fanfare.js counts them.
let attempt = 0;

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

function handle(event) {
  if (event.id) $("last-id").textContent = event.id;
  const payload = parse(event.data);
  if (event.type === "notification" && payload && typeof payload === "object") {
    toast(payload);
    addEvent("notification " + JSON.stringify(payload), false);
  } else if (event.type === "update" && payload && typeof payload === "object") {
    update(payload);
    addEvent("update " + JSON.stringify(payload), false);
  } else {
    addEvent(event.type + " " + JSON.stringify(payload), false);
  }
}

function showState(state, detail) {
  if (state === "reconnecting") {
    attempt = detail?.attempt || attempt + 1;
    setState("reconnecting", "(attempt " + attempt + ")");
  } else if (state === "connecting") {
    // Once the page has been connected, or an attempt failed, every try is a reconnect.
    if (opens === 0 && attempt === 0) setState("connecting");
    else setState("reconnecting", "(attempt " + Math.max(attempt, 1) + ")");
  } else if (state === "open") {
    // The answer is streaming; the badge says open once the node says __connected.
    $("join-error").textContent = "";
  } else if (state === "closed") {
    setState("closed");
    $("join-button").disabled = false;
    $("leave-button").disabled = true;
  }
}

function opened(current, info) {
  const lastId = current.lastEventId;
  const resumed = opens > 0;
  opens += 1;
  attempt = 0;
  setState("open");
  $("node").textContent = info.nodeId || "?";
  document.body.dataset.node = info.nodeId || "";
  if (resumed) {
    $("resume").textContent = "Reconnected to " + info.nodeId + (lastId ? ", resuming after " + lastId : "") + ".";
    addEvent("resumed on " + info.nodeId + (lastId ? " after " + lastId : ""), true);
  } else {
    addEvent("connected to " + info.nodeId + " as " + info.clientId + " on " + (info.channels || []).join(", "), true);
  }
}

function eventNames(text) {
  return text.split(",").map((name) => name.trim()).filter((name) => /^[A-Za-z0-9_.:@-]{1,128}$/.test(name));
}

function join(clientId, channels, token, events) {
  if (stream) stream.close();
  opens = 0;
  attempt = 0;
  const share = new URLSearchParams({ clientId });
  if (channels) share.set("channels", channels);
  if (events) share.set("events", events);
  $("share").href = "/client?" + share.toString();
  $("share").textContent = location.origin + "/client?" + share.toString();
  $("join-error").textContent = "";
  $("join-button").disabled = true;
  $("leave-button").disabled = false;
  setState("connecting");
  // EventSource hands over only the event names it was asked for (no wildcard): the usual
  // shapes, plus whatever the page was told to show.
  const names = [...new Set(["notification", "update", "message", ...eventNames(events)])];
  const current = connect({
    clientId,
    channels: channels || undefined,
    token: token || undefined,
    events: names,
    onStateChange: (state, detail) => { if (stream === current) showState(state, detail); },
    onOpen: (info) => { if (stream === current) opened(current, info); },
    onEvent: (event) => { if (stream === current) handle(event); },
    onReset: (channels, reason) => {
      if (stream !== current) return;
      addEvent("some events could not be replayed: " + JSON.stringify({ channels, reason }), true);
      $("resume").textContent = "Some events published while away could not be replayed.";
    },
    onDisconnect: ({ reason, reconnect }) => {
      if (stream !== current) return;
      addEvent("disconnected by the node: " + (reason || "no reason") + (reconnect ? "; reconnecting" : ""), true);
    },
    onError: (error, { fatal }) => {
      if (stream !== current) return;
      if (fatal) {
        // A refusal of this request (bad id, token, channel): retrying would not help.
        $("join-error").textContent = "Refused (" + (error.status ?? "?") + "): " + error.message;
      } else if (!error.status) {
        // A callback of this page threw (fanfare.js passes those here too), or the network failed.
        console.warn("fanfare:", error);
      }
    },
  });
  stream = current;
}

function leave() {
  const current = stream;
  stream = null;
  if (current) current.close();
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
