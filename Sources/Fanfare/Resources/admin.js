// The admin page: the cluster's counts, polled every second and charted per node over the
// last minutes (kept on the page), who is online on a channel, and forms to publish and to
// end a client's streams.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const keys = {
    admin: sessionStorage.getItem("fanfare.adminKey") || "",
    publisher: sessionStorage.getItem("fanfare.publisherKey") || "",
  };

  function headers(key) {
    const result = { "Accept": "application/json" };
    if (key) result["Authorization"] = "Bearer " + key;
    return result;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    row.append(td);
    return td;
  }

  function buttonCell(row, text, className, label, onClick) {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.textContent = text;
    button.setAttribute("aria-label", label);
    button.addEventListener("click", onClick);
    td.append(button);
    row.append(td);
  }

  function uptime(seconds) {
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m" + (seconds % 60) + "s";
    return Math.floor(seconds / 3600) + "h" + Math.floor((seconds % 3600) / 60) + "m";
  }

  async function getJSON(path) {
    const response = await fetch(path, { headers: headers(keys.admin), cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
    return body;
  }

  // Samples of every node's totals, one per refresh, for the charts: at most `keep`.
  const keep = 300;
  const samples = [];
  const palette = ["#3451d1", "#1c7c46", "#b42318", "#9a6700", "#7b3fc4", "#0e7490", "#c2410c", "#475569"];
  const colours = new Map();

  function colour(node) {
    if (!colours.has(node)) colours.set(node, palette[colours.size % palette.length]);
    return colours.get(node);
  }

  function record(metrics) {
    const sample = { t: Date.now(), nodes: {} };
    for (const node of metrics.nodes) {
      sample.nodes[node.nodeId] = {
        connections: node.connections,
        published: node.published,
        delivered: node.delivered,
      };
    }
    samples.push(sample);
    if (samples.length > keep) samples.shift();
  }

  // One series per node: [time, value] for each sample (rates from two samples in a row).
  function series(kind) {
    const result = new Map();
    for (let index = 0; index < samples.length; index++) {
      const sample = samples[index];
      const previous = index > 0 ? samples[index - 1] : null;
      for (const [node, now] of Object.entries(sample.nodes)) {
        let value;
        if (kind === "connections") {
          value = now.connections;
        } else {
          const before = previous && previous.nodes[node];
          if (!before || typeof now[kind] !== "number" || typeof before[kind] !== "number") continue;
          const seconds = (sample.t - previous.t) / 1000;
          value = seconds > 0 ? Math.max(0, (now[kind] - before[kind]) / seconds) : 0;
        }
        if (!result.has(node)) result.set(node, []);
        result.get(node).push([sample.t, value]);
      }
    }
    return result;
  }

  function readable(value) {
    if (value >= 10000) return Math.round(value / 1000) + "k";
    if (value >= 1000) return (value / 1000).toFixed(1) + "k";
    return String(Math.round(value));
  }

  function draw(canvas, lines) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#5b6475";
    const line = style.getPropertyValue("--line").trim() || "#d9dde5";
    const now = Date.now();
    const span = Math.max(30000, samples.length ? now - samples[0].t : 30000);
    let top = 1;
    for (const points of lines.values()) for (const [, value] of points) top = Math.max(top, value);
    top *= 1.1;
    const left = 34, bottom = height - 16;
    g.strokeStyle = line;
    g.lineWidth = 1;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = muted;
    for (const fraction of [0, 0.5, 1]) {
      const y = bottom - fraction * (bottom - 6);
      g.beginPath(); g.moveTo(left, y); g.lineTo(width, y); g.stroke();
      g.fillText(readable(top * fraction), 2, y + 4);
    }
    g.fillText(span < 90000 ? "-" + Math.round(span / 1000) + " s" : "-" + Math.round(span / 6000) / 10 + " min",
      left, height - 3);
    g.fillText("now", width - 24, height - 3);
    const latest = {};
    for (const [node, points] of lines) {
      g.strokeStyle = colour(node);
      g.lineWidth = 2;
      g.beginPath();
      points.forEach(([t, value], index) => {
        const x = left + (1 - (now - t) / span) * (width - left);
        const y = bottom - (value / top) * (bottom - 6);
        if (index === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
      if (points.length) latest[node] = Math.round(points[points.length - 1][1] * 10) / 10;
    }
    // What the chart shows, for tests and screen readers.
    canvas.dataset.points = String(Math.max(0, ...[...lines.values()].map((points) => points.length)));
    canvas.dataset.latest = JSON.stringify(latest);
    canvas.setAttribute("aria-label", canvas.getAttribute("aria-label").split(":")[0] + ": " +
      Object.entries(latest).map(([node, value]) => node + " " + value).join(", "));
  }

  function drawCharts() {
    draw($("chart-connections"), series("connections"));
    draw($("chart-deliveries"), series("delivered"));
    draw($("chart-publishes"), series("published"));
    const nodes = samples.length ? Object.keys(samples[samples.length - 1].nodes).sort() : [];
    $("legend").replaceChildren(...nodes.map((node) => {
      const item = document.createElement("li");
      item.style.setProperty("--swatch", colour(node));
      item.textContent = node;
      return item;
    }));
  }

  // Who is online: the presence route every refresh, and the joins and leaves as they come
  // on presence:<channel>.
  let presence = null;

  function showPresence(channel) {
    if (presence && presence.source) presence.source.close();
    presence = { channel, source: null };
    $("presence-log").replaceChildren();
    const query = new URLSearchParams({ channels: "presence:" + channel });
    if (keys.admin) query.set("token", keys.admin);
    const id = "admin-" + Math.random().toString(36).slice(2, 10);
    const source = new EventSource("/api/sse/subscribe/" + id + "?" + query);
    const log = (kind, event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch (error) { return; }
      const item = document.createElement("li");
      item.dataset.kind = kind;
      item.textContent = new Date().toLocaleTimeString() + "  " + kind + "  " + data.user;
      $("presence-log").prepend(item);
      while ($("presence-log").children.length > 200) $("presence-log").lastChild.remove();
      refreshPresence();
    };
    source.addEventListener("join", (event) => log("join", event));
    source.addEventListener("leave", (event) => log("leave", event));
    presence.source = source;
    refreshPresence();
  }

  async function refreshPresence() {
    if (!presence) return;
    try {
      const answer = await getJSON("/api/sse/presence/" + encodeURIComponent(presence.channel));
      $("presence-error").textContent = "";
      $("presence-users").replaceChildren(...answer.users.map((user) => {
        const row = document.createElement("tr");
        row.dataset.user = user.userId;
        cell(row, user.userId);
        cell(row, user.streams);
        return row;
      }));
    } catch (error) {
      $("presence-error").textContent = "Cannot read who is online: " + error.message;
    }
  }

  $("presence-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const channel = $("presence-channel").value.trim();
    if (channel) showPresence(channel);
  });

  async function endClient(clientId) {
    const result = $("result");
    try {
      const response = await fetch("/api/sse/disconnect", {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, headers(keys.publisher || keys.admin)),
        body: JSON.stringify({ clientId, reason: "ended from the admin page", reconnect: false }),
      });
      const answer = await response.json().catch(() => ({ error: response.statusText }));
      result.className = response.ok ? "result" : "result error";
      result.dataset.status = String(response.status);
      result.textContent = response.ok
        ? "Ended " + answer.closed + " stream(s) of " + clientId + " on " + answer.answered + " node(s)"
        : "Refused (" + response.status + "): " + answer.error;
      refresh();
    } catch (error) {
      result.className = "result error";
      result.textContent = "The node did not answer: " + error.message;
    }
  }

  async function refresh() {
    try {
      const [metrics, clients] = await Promise.all([getJSON("/api/sse/metrics"), getJSON("/api/sse/clients")]);
      record(metrics);
      drawCharts();
      refreshPresence();
      $("cluster-error").textContent = "";
      $("total-connections").textContent = metrics.totalConnections;
      $("total-clients").textContent = metrics.totalClients;
      $("average").textContent = metrics.averageConnectionsPerClient;
      $("node-count").textContent = metrics.nodes.length;
      const now = Date.now();
      const nodes = $("nodes");
      nodes.replaceChildren(...metrics.nodes.map((node) => {
        const row = document.createElement("tr");
        row.dataset.node = node.nodeId;
        [node.nodeId, node.address, node.version, uptime(node.uptimeSeconds), node.connections, node.clients,
          Math.max(0, now - node.lastSeen) + " ms ago"].forEach((text) => cell(row, text));
        return row;
      }));
      const list = $("clients");
      list.replaceChildren(...clients.clients.map((client) => {
        const row = document.createElement("tr");
        row.dataset.client = client.clientId;
        cell(row, client.clientId);
        cell(row, client.connections);
        buttonCell(row, "Select", "secondary", "Send to " + client.clientId, () => {
          $("target-kind").value = "clientId";
          $("target").value = client.clientId;
          targetChanged();
          $("event-name").focus();
        });
        buttonCell(row, "End", "danger", "End the streams of " + client.clientId, () => endClient(client.clientId));
        return row;
      }));
      $("updated").textContent = new Date().toLocaleTimeString();
    } catch (error) {
      $("cluster-error").textContent = "Cannot read the cluster: " + error.message;
    }
  }

  function targetChanged() {
    const everyone = $("target-kind").value === "broadcast";
    $("target").disabled = everyone;
    $("target-label").hidden = everyone;
  }
  $("target-kind").addEventListener("change", targetChanged);

  $("send").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = $("result");
    let payload;
    try {
      payload = JSON.parse($("payload").value || "null");
    } catch (error) {
      result.className = "result error";
      result.textContent = "The payload is not JSON: " + error.message;
      return;
    }
    const kind = $("target-kind").value;
    const body = { event: $("event-name").value.trim(), payload };
    if (kind === "broadcast") {
      body.broadcast = true;
    } else {
      body[kind] = $("target").value.trim();
    }
    $("send-button").disabled = true;
    try {
      const response = await fetch("/api/sse/notify", {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, headers(keys.publisher)),
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({ ok: false, error: response.statusText }));
      result.className = answer.ok ? "result" : "result error";
      result.dataset.status = String(response.status);
      result.textContent = answer.ok
        ? "Sent: " + answer.sent + ", connections: " + answer.connections + ", id: " + answer.id + "\n" + JSON.stringify(answer)
        : "Refused (" + response.status + "): " + answer.error;
      refresh();
    } catch (error) {
      result.className = "result error";
      result.textContent = "The node did not answer: " + error.message;
    } finally {
      $("send-button").disabled = false;
    }
  });

  $("credentials-form").addEventListener("submit", (event) => {
    event.preventDefault();
    keys.admin = $("admin-key").value.trim();
    keys.publisher = $("publisher-key").value.trim();
    sessionStorage.setItem("fanfare.adminKey", keys.admin);
    sessionStorage.setItem("fanfare.publisherKey", keys.publisher);
    refresh();
  });

  fetch("/readyz").then((response) => response.json()).then((ready) => {
    const access = ready.access || {};
    const needsAdmin = access.admin === "credential";
    const needsPublisher = access.publish === "credential";
    $("credentials").hidden = !(needsAdmin || needsPublisher);
    $("admin-key-label").hidden = !needsAdmin;
    $("publisher-key-label").hidden = !needsPublisher;
  }).catch(() => {});

  targetChanged();
  refresh();
  setInterval(refresh, 1000);
})();
