// Follows a Fanfare stream with fanfare.js over fetch (node's own), as a service would, and
// reports what happened once the stream is over: started by JavaScriptClientTests.swift.
//   node disconnect.mjs <base URL> <client id>
// Prints "open" once __connected arrived, then one JSON line when done resolves and three
// more seconds passed: the disconnect it was told about and every request it made.
import { connect } from "../../Clients/js/fanfare.js";

const [base, clientId] = process.argv.slice(2);
const requests = [];
const counting = (url, init) => {
  requests.push(`${init?.method ?? "GET"} ${url}`);
  return fetch(url, init);
};
let disconnect = null;
const stream = connect({
  baseURL: base,
  clientId,
  transport: "fetch",
  method: "POST",
  fetch: counting,
  onOpen: () => console.log("open"),
  onDisconnect: (info) => { disconnect = info; },
});
const deadline = setTimeout(() => { console.log(JSON.stringify({ error: "no disconnect within 20 s" })); process.exit(2); }, 20_000);
const result = await stream.done;
clearTimeout(deadline);
// Anything it would do after being told to stay away, it does within its retry (2 s).
await new Promise((resolve) => setTimeout(resolve, 3_000));
console.log(JSON.stringify({ disconnect, complete: result.complete, reason: result.reason, requests }));
process.exit(0);
