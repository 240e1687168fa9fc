/** A user event (never a `__` control event nor a heartbeat). */
export interface FanfareEvent {
  /** The SSE event type; "message" when the event had no `event:` line. */
  type: string;
  data: string;
  /** The stream's cursor after this event (its `id:`). */
  id: string;
  /** `JSON.parse(data)`; throws on bad JSON. */
  json<T = unknown>(): T;
}

/** "connecting" (a request is under way), "open" (the response is streaming),
 *  "reconnecting" (waiting to retry), "closed" (for good). A stream starts in "connecting". */
export type StreamState = "connecting" | "open" | "reconnecting" | "closed";

export interface StateDetail {
  /** For "reconnecting": the wait in ms before the next attempt, the failures in a row, the cause. */
  delay?: number;
  attempt?: number;
  error?: Error;
  /** For "closed". */
  reason?: CloseReason;
}

export type CloseReason = "end" | "no-content" | "disconnect" | "closed" | "error";

/** An HTTP refusal: `status` and the server's JSON `{code, error}`. */
export interface FanfareError extends Error {
  status?: number;
  code?: number;
  body?: unknown;
}

export interface ConnectedInfo {
  clientId?: string;
  nodeId?: string;
  channels?: string[];
  time?: unknown;
  [key: string]: unknown;
}

export interface CommonOptions {
  /** Origin (and optional prefix) of the server; "" (default) is the same origin. */
  baseURL?: string;
  token?: string;
  /** Called once before every reconnect, and before the first connect when no token is given. */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** "auto" (default): EventSource when it exists and the request is a GET without custom headers, else fetch. */
  transport?: "auto" | "eventsource" | "fetch";
  method?: "GET" | "POST";
  /** Extra request headers (fetch transport only; any header makes "auto" use fetch). */
  headers?: HeadersInit;
  /** Resume after this cursor. */
  lastEventId?: string;
  /** Send cookies cross-origin (EventSource withCredentials / fetch credentials: "include"). */
  withCredentials?: boolean;
  /** Event types to listen for besides "message" (EventSource cannot listen to every type). */
  events?: string[];
  /** First back-off step in ms until the server sends `retry:` (default 1000). */
  retry?: number;
  /** Back-off cap in ms (default 30000). */
  maxRetry?: number;
  /** Injectables for tests or other runtimes. */
  fetch?: typeof fetch;
  EventSource?: unknown;
  /** Returns [0, 1); used for jitter (default Math.random). */
  random?: () => number;

  onEvent?(event: FanfareEvent): void;
  /** `__connected`: the stream is live. */
  onOpen?(info: ConnectedInfo): void;
  /** `__reset`: events of these channels may be missing. */
  onReset?(channels: string[], reason: "trimmed" | "gone" | "unknown" | "capped" | string): void;
  /** `__disconnect`, or a closing comment (draining, unavailable, token-expired, undeliverable) with reconnect: true. */
  onDisconnect?(info: { reason: string; reconnect: boolean }): void;
  /** Transport errors (fatal: false, a retry follows), refusals (fatal: true, closed) and callback exceptions. */
  onError?(error: FanfareError, info: { fatal: boolean }): void;
  onStateChange?(state: StreamState, detail?: StateDetail): void;
}

export interface ConnectOptions extends CommonOptions {
  /** Path segment of /api/sse/subscribe/{clientId}. */
  clientId: string;
  userId?: string;
  channels?: string[] | string;
}

export interface RunOptions extends CommonOptions {
  channel: string;
  /** "start" replays the channel's history first. */
  from?: "start";
}

export interface StreamResult {
  /** The last user event seen (for a run that ended with `__end`: its final event), or null. */
  final: FanfareEvent | null;
  /** How many user events were delivered. */
  events: number;
  /** True on `__end` or 204. */
  complete: boolean;
  reason: Exclude<CloseReason, "error">;
}

export interface FanfareStream {
  readonly lastEventId: string;
  readonly state: StreamState;
  /** Resolves once the stream is closed for good; rejects with the error when a refusal was fatal. */
  readonly done: Promise<StreamResult>;
  close(): void;
  /** Listen to one user event type; returns a function that removes the listener. */
  on(type: string, listener: (event: FanfareEvent) => void): () => void;
}

export function connect(options: ConnectOptions): FanfareStream;
export function followRun(options: RunOptions): FanfareStream;

export interface ParsedEvent {
  type: string;
  data: string;
  id: string;
}

export interface Parser {
  /** Feed bytes (decoded as streaming UTF-8) or already-decoded text. */
  feed(chunk: Uint8Array | ArrayBuffer | string): void;
  /** End of stream: an unterminated last event is discarded. */
  end(): void;
  /** The last event ID string (updated at each dispatch, including ones with empty data). */
  readonly lastEventId: string;
}

export function createParser(
  onEvent: (event: ParsedEvent) => void,
  onRetry?: (milliseconds: number) => void,
  onComment?: (text: string) => void,
  lastEventId?: string,
): Parser;
