/// The browser pages, served by every node from memory: plain HTML, CSS and script, no
/// build step and nothing fetched from elsewhere, so they work offline and through nginx.
enum BrowserPages {
    /// The `/client` page.
    static let clientHTML = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Fanfare client</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/assets/fanfare.css">
        </head>
        <body>
        <header>
          <h1>Fanfare client</h1>
          <nav><a href="/client">Client</a><a href="/admin">Admin</a></nav>
        </header>
        <div id="toasts" role="status" aria-live="polite"></div>
        <main>
          <section aria-labelledby="join-title">
            <h2 id="join-title">Join</h2>
            <form id="join">
              <label for="clientId">Your name (client id)
                <input id="clientId" name="clientId" required maxlength="100" pattern="[A-Za-z0-9_.@\-]{1,100}" autocomplete="username" placeholder="alice">
              </label>
              <label for="channels">Channels (comma-separated, optional)
                <input id="channels" name="channels" placeholder="orders,alerts">
              </label>
              <label for="event-names">Other event names to show (notification, update and message always)
                <input id="event-names" name="events" placeholder="order.created,greeting">
              </label>
              <label for="token" id="token-label" hidden>Token (this node requires one)
                <input id="token" name="token" autocomplete="off">
              </label>
              <button id="join-button" type="submit">Join</button>
              <button id="leave-button" type="button" class="secondary" disabled>Leave</button>
            </form>
            <p id="join-error" class="error" role="alert"></p>
          </section>
          <section aria-labelledby="conn-title">
            <h2 id="conn-title">Connection</h2>
            <div class="status">
              <span>State: <span id="state" class="badge closed" aria-live="polite">closed</span></span>
              <span>Node: <strong id="node">–</strong></span>
              <span>Last event id: <code id="last-id">–</code></span>
              <span>Share: <a id="share" href="/client">this page</a></span>
            </div>
            <p id="resume" class="muted" aria-live="polite"></p>
          </section>
          <section aria-labelledby="updates-title">
            <h2 id="updates-title">Updates</h2>
            <div class="table-wrap">
              <table>
                <thead><tr><th scope="col">Time</th><th scope="col">Entity</th><th scope="col">Action</th><th scope="col">Payload</th></tr></thead>
                <tbody id="updates"></tbody>
              </table>
            </div>
          </section>
          <section aria-labelledby="events-title">
            <h2 id="events-title">All events</h2>
            <ul id="events" class="events" aria-live="polite"></ul>
          </section>
        </main>
        <script src="/assets/client.js"></script>
        </body>
        </html>
        """#

    /// The `/admin` page.
    static let adminHTML = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Fanfare admin</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/assets/fanfare.css">
        </head>
        <body>
        <header>
          <h1>Fanfare admin</h1>
          <nav><a href="/client">Client</a><a href="/admin">Admin</a></nav>
          <span class="muted">Updated <span id="updated">–</span></span>
        </header>
        <main>
          <section id="credentials" aria-labelledby="credentials-title" hidden>
            <h2 id="credentials-title">Credentials</h2>
            <form id="credentials-form">
              <label for="admin-key" id="admin-key-label" hidden>Admin key or admin token
                <input id="admin-key" type="password" autocomplete="off">
              </label>
              <label for="publisher-key" id="publisher-key-label" hidden>Publisher key or publish token
                <input id="publisher-key" type="password" autocomplete="off">
              </label>
              <button type="submit">Use</button>
            </form>
          </section>
          <section aria-labelledby="cluster-title">
            <h2 id="cluster-title">Cluster</h2>
            <div class="figures">
              <div class="figure">Connections <b id="total-connections">–</b></div>
              <div class="figure">Clients <b id="total-clients">–</b></div>
              <div class="figure">Per client <b id="average">–</b></div>
              <div class="figure">Nodes <b id="node-count">–</b></div>
            </div>
            <p id="cluster-error" class="error" role="alert"></p>
            <div class="table-wrap">
              <table aria-label="Nodes">
                <thead><tr><th scope="col">Node</th><th scope="col">Address</th><th scope="col">Version</th><th scope="col">Uptime</th><th scope="col">Connections</th><th scope="col">Clients</th><th scope="col">Last seen</th></tr></thead>
                <tbody id="nodes"></tbody>
              </table>
            </div>
          </section>
          <section aria-labelledby="clients-title">
            <h2 id="clients-title">Connected clients</h2>
            <div class="table-wrap">
              <table aria-label="Clients">
                <thead><tr><th scope="col">Client id</th><th scope="col">Connections</th><th scope="col"><span class="muted">Send to</span></th></tr></thead>
                <tbody id="clients"></tbody>
              </table>
            </div>
          </section>
          <section aria-labelledby="send-title">
            <h2 id="send-title">Send</h2>
            <form id="send">
              <label for="target-kind">To
                <select id="target-kind">
                  <option value="clientId">one client</option>
                  <option value="userId">a user</option>
                  <option value="channel">a channel</option>
                  <option value="broadcast">everyone</option>
                </select>
              </label>
              <label for="target" id="target-label">Client id, user id or channel
                <input id="target" placeholder="alice">
              </label>
              <label for="event-name">Event name
                <input id="event-name" value="notification" required>
              </label>
              <label for="payload" class="wide">Payload (JSON)
                <textarea id="payload">{"notificationType":"success","title":"Hello","message":"Sent from the admin page","duration":5000}</textarea>
              </label>
              <button id="send-button" type="submit">Send</button>
            </form>
            <pre id="result" class="result" aria-live="polite"></pre>
          </section>
        </main>
        <script src="/assets/admin.js"></script>
        </body>
        </html>
        """#

    /// `/assets/fanfare.css`, shared by both pages.
    static let css = #"""
        :root {
          color-scheme: light dark;
          --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #5b6475; --line: #d9dde5;
          --accent: #3451d1; --ok: #1c7c46; --warn: #9a6700; --err: #b42318; --info: #2556a8;
        }
        @media (prefers-color-scheme: dark) {
          :root { --bg: #14171d; --panel: #1d2129; --text: #e6e9ef; --muted: #9aa3b5; --line: #323846; --accent: #7b93ff; }
        }
        * { box-sizing: border-box; }
        [hidden] { display: none !important; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
        header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; padding: .8rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--panel); }
        header h1 { font-size: 1.15rem; margin: 0; }
        header nav a { color: var(--accent); margin-right: .8rem; }
        main { max-width: 1100px; margin: 0 auto; padding: 1rem 1.2rem 3rem; display: grid; gap: 1rem; }
        section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; min-width: 0; }
        h2 { font-size: 1rem; margin: 0 0 .7rem; }
        form { display: flex; flex-wrap: wrap; gap: .7rem 1rem; align-items: flex-end; }
        label { display: flex; flex-direction: column; gap: .25rem; font-size: .85rem; color: var(--muted); flex: 1 1 12rem; }
        input, select, textarea { font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .45rem .55rem; min-width: 0; }
        textarea { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; min-height: 7rem; width: 100%; }
        label.wide { flex-basis: 100%; }
        button { font: inherit; border: 0; border-radius: 6px; padding: .5rem 1rem; background: var(--accent); color: #fff; cursor: pointer; }
        button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); }
        button:disabled { opacity: .5; cursor: default; }
        .status { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; }
        .badge { display: inline-block; padding: .15rem .6rem; border-radius: 999px; font-weight: 600; font-size: .85rem; background: var(--line); }
        .badge.open { background: #d3f2df; color: var(--ok); }
        .badge.connecting, .badge.reconnecting { background: #fff0c2; color: var(--warn); }
        .badge.closed { background: #fde2df; color: var(--err); }
        .muted { color: var(--muted); }
        .figures { display: flex; flex-wrap: wrap; gap: 1rem; }
        .figure { flex: 1 1 9rem; border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; }
        .figure b { display: block; font-size: 1.6rem; }
        .table-wrap { overflow-x: auto; }
        table { width: 100%; border-collapse: collapse; font-size: .9rem; }
        th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
        td.json { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .8rem; }
        ul.events { list-style: none; margin: 0; padding: 0; max-height: 22rem; overflow-y: auto; }
        ul.events li { border-bottom: 1px solid var(--line); padding: .35rem 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .8rem; word-break: break-word; }
        ul.events li.system { color: var(--muted); }
        pre.result { margin: .7rem 0 0; white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
        .error { color: var(--err); }
        #toasts { position: fixed; top: 1rem; right: 1rem; display: grid; gap: .5rem; width: min(22rem, calc(100vw - 2rem)); z-index: 10; }
        .toast { border-radius: 8px; padding: .7rem .9rem; color: #fff; box-shadow: 0 6px 20px rgb(0 0 0 / .25); background: var(--info); }
        .toast.success { background: var(--ok); } .toast.error { background: var(--err); } .toast.warning { background: var(--warn); }
        .toast strong { display: block; }
        @media (max-width: 600px) {
          header, main { padding-left: .7rem; padding-right: .7rem; }
          label { flex-basis: 100%; }
          button { width: 100%; }
          th, td { white-space: normal; }
        }
        """#

    /// `/assets/client.js`.
    static let clientJS = #"""
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
        """#

    /// `/assets/admin.js`.
    static let adminJS = #"""
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
        """#

}
