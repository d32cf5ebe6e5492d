// The chat page of the browser end-to-end test, bundled with esbuild and served from another
// origin than the API. It uses only the shipped client (src/client) and a session token that
// "its server" (the test) minted. State survives a reload in localStorage: the view and the
// offset to resume after, plus every offset ever received (for the test to check).
import {
  createSessionClient,
  initialSessionView,
  reduceSessionView,
} from "../../../src/client/index.ts";
import { LiveRpc } from "../../../src/client/rpc.ts";

const params = new URLSearchParams(location.search);
const base = params.get("base");
const sessionId = params.get("session");
const token = params.get("token");
const client = createSessionClient({ baseUrl: base, token });

const saved = JSON.parse(localStorage.getItem(sessionId) ?? "null");
let view = saved?.view ?? initialSessionView;
const received = saved?.received ?? [];
const loads = (saved?.loads ?? 0) + 1;

function render() {
  const list = document.getElementById("messages");
  list.replaceChildren(
    ...view.messages.map((m) => {
      const li = document.createElement("li");
      li.className = `${m.kind} ${m.status}`;
      li.textContent =
        m.kind === "tool"
          ? `tool ${m.toolName} ${m.input} — ${m.status}${m.result === null ? "" : ` → ${JSON.stringify(m.result)}`}`
          : `${m.kind === "user" ? "you" : "assistant"}: ${m.text}`;
      return li;
    }),
  );
  document.getElementById("status").textContent =
    `status: ${view.status} · after offset ${view.lastOffset} · load #${loads}`;
  document.getElementById("approvals").replaceChildren(
    ...view.pendingApprovals.map((a) => {
      const button = document.createElement("button");
      button.textContent = `Approve ${a.toolName} ${JSON.stringify(a.args)}`;
      button.onclick = () => client.decide(sessionId, a.toolCallId, true);
      return button;
    }),
  );
}

async function follow() {
  for await (const event of client.events(sessionId, { after: view.lastOffset })) {
    view = reduceSessionView(view, event);
    received.push(event.offset);
    localStorage.setItem(sessionId, JSON.stringify({ view, received, loads }));
    render();
  }
}

localStorage.setItem(sessionId, JSON.stringify({ view, received, loads }));
render();
follow().catch((error) => {
  document.getElementById("status").textContent = `error: ${error.message}`;
});

/** A native EventSource with ?token=, from an offset; collects events until `until` type. */
function eventSource(after, untilType) {
  return new Promise((resolve, reject) => {
    const url = `${base}/v1/sessions/${sessionId}/events?token=${encodeURIComponent(token)}&offset=${after}`;
    const source = new EventSource(url);
    const events = [];
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      events.push({ id: message.lastEventId, offset: event.offset, type: event.type });
      if (event.type === untilType) {
        source.close();
        resolve(events);
      }
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) reject(new Error("EventSource closed"));
    };
    source.onopen = () => window.dispatchEvent(new Event("eventsource-open"));
  });
}

/** capnweb over a WebSocket, with the same token: follow events and send a message. */
async function rpcTurn(content) {
  const live = new LiveRpc({ url: `${base}/v1/rpc`, credential: token });
  try {
    const api = await live.api();
    const events = [];
    let resolveDone;
    const done = new Promise((r) => {
      resolveDone = r;
    });
    live.follow(sessionId, view.lastOffset, (event) => {
      events.push({ offset: event.offset, type: event.type, payload: event.payload });
      if (event.type === "turn/completed") resolveDone();
    });
    await api.sendMessage(sessionId, content);
    await done;
    return events;
  } finally {
    live.close();
  }
}

window.app = {
  send: (content) => client.send(sessionId, content),
  view: () => view,
  received: () => received,
  loads: () => loads,
  eventSource,
  rpcTurn,
};
