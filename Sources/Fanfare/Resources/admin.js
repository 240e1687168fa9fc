// The admin page: the cluster's counts, polled every second, and a form to publish.
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

  async function refresh() {
    try {
      const [metrics, clients] = await Promise.all([getJSON("/api/sse/metrics"), getJSON("/api/sse/clients")]);
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
        const action = document.createElement("td");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.textContent = "Select";
        button.setAttribute("aria-label", "Send to " + client.clientId);
        button.addEventListener("click", () => {
          $("target-kind").value = "clientId";
          $("target").value = client.clientId;
          targetChanged();
          $("event-name").focus();
        });
        action.append(button);
        row.append(action);
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
