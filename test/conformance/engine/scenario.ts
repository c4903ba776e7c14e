/**
 * The data model of the differential conformance suite: a scenario is a name, the server settings it needs, and a
 * list of steps over raw HTTP and raw WebSocket frames. The runner (`run.ts`) executes the steps against the
 * ASP.NET Core reference server and against fastify-signalr, turning what each server did into an
 * {@link Observation}; the suite (`suite.ts`) asserts the two observations are equal, or, for a scenario marked with
 * an entry of `KNOWN-DIFFERENCES.md`, that each server still does what that entry says.
 *
 * Scenario tables live in `test/conformance/scenarios/`, one file per area. Steps are plain objects told apart by
 * their one distinguishing key (`http`, `negotiate`, `open`, `send`, `receive`, `listen`, `closed`, `close`,
 * `wait`, …), so a table reads as a transcript:
 *
 * ```ts
 * {
 *   name: 'an unknown protocol is refused',
 *   steps: [{ open: '' }, { send: '{"protocol":"xml","version":1}\u001e' }, { closed: true }],
 * }
 * ```
 *
 * Strings in paths, request headers, request bodies and sent frames may name values saved by earlier steps as
 * `{{name}}` (`{{id}}` and `{{token}}` after a `negotiate` step; `{{server}}` is the server's own origin). `{{`
 * cannot occur in JSON, so the syntax never clashes with payloads.
 *
 * @packageDocumentation
 */

/** The transports as named on the wire. */
export type TransportName = 'WebSockets' | 'ServerSentEvents' | 'LongPolling';

/**
 * Server settings in one shape. `servers.ts` translates them into the reference server's environment variables
 * and into fastify-signalr's plugin options; unset means the default (which is .NET's on both sides).
 */
export interface ServerSettings {
  readonly keepAliveIntervalMs?: number;
  readonly clientTimeoutIntervalMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** Bytes, framing included. */
  readonly maximumReceiveMessageSize?: number;
  readonly enableDetailedErrors?: boolean;
  readonly maximumParallelInvocationsPerClient?: number;
  readonly streamBufferCapacity?: number;
  readonly transports?: readonly TransportName[];
  readonly disconnectTimeoutMs?: number;
  readonly longPollTimeoutMs?: number;
  /** Not an option of our server yet: only pending scenarios may use it. */
  readonly allowStatefulReconnects?: boolean;
  /** Allowed CORS origins (`*` = any, echoed). Not an option of our server yet: only pending scenarios may use it. */
  readonly corsOrigins?: readonly string[];
}

/** Bytes to send: a string (sent as UTF-8), or exact bytes. */
export type Payload = string | Buffer;

/**
 * An HTTP request with `fetch`. Observed: status, `content-type`, the body as text, and any `headers` listed.
 * `save` stores properties of a JSON response body for later steps (`{ token: 'connectionToken' }`).
 */
export interface HttpStep {
  /** The method. */
  readonly http: string;
  /** Appended to the hub URL, e.g. `/negotiate?negotiateVersion=1` or `?id={{token}}` (to the server's root with `root`). */
  readonly path: string;
  /** The path is one of the server's own routes outside the hub, such as `/ask/{{id}}`. */
  readonly root?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Payload;
  /** Further response headers to observe (lower case). */
  readonly observe?: readonly string[];
  readonly save?: Readonly<Record<string, string>>;
  /**
   * Sends the request and moves on without waiting for the response (a long poll); a later `awaitHttp` step with
   * the same name observes it.
   */
  readonly background?: string;
}

/** Observes the response of an earlier `http` step started with `background`. */
export interface AwaitHttpStep {
  readonly awaitHttp: string;
  /** Time bounds for the response, in ms since the request was sent. */
  readonly withinMs?: readonly [number, number];
}

/**
 * `POST {hub}/negotiate{query}`, observed like an `http` step; saves `connectionId` as `{{id}}` and
 * `connectionToken` as `{{token}}` (or `{{<as>.id}}`, `{{<as>.token}}`).
 */
export interface NegotiateStep {
  /** The query string, e.g. `?negotiateVersion=1`; `''` for none. */
  readonly negotiate: string;
  readonly as?: string;
}

/**
 * A WebSocket upgrade of `{hub}{open}`. Observed: accepted, or the refusal's status, `content-type` and body.
 * Sockets are named (`socket`, default `ws`) so a scenario can hold several.
 */
export interface OpenStep {
  /** The query string, e.g. `?id={{token}}`; `''` for none (a connection without negotiate). */
  readonly open: string;
  readonly socket?: string;
  /** Request headers of the upgrade, e.g. an `origin`. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * How the runner splits what arrives into hub messages: `json` (default) at 0x1E; `messagepack` the handshake
   * answer at 0x1E, then VarInt-length-prefixed messages, shown as hex.
   */
  readonly protocol?: 'json' | 'messagepack';
}

/** Sends one WebSocket frame. */
export interface SendStep {
  readonly send: Payload;
  readonly socket?: string;
  /** Frame type; default Text for a string and Binary for bytes. */
  readonly frame?: 'text' | 'binary';
  /** Leaves the WebSocket message unfinished: the next `send` goes out as a continuation frame. */
  readonly fragment?: boolean;
}

/**
 * Waits for the next `receive` hub messages on a socket (at most `timeoutMs`, default 3 s). Observed: those
 * messages (without their separator), the frame types that carried them, and whether the socket closed or the
 * wait timed out first.
 */
export interface ReceiveStep {
  readonly receive: number;
  readonly socket?: string;
  readonly timeoutMs?: number;
  /**
   * Stores properties of the last received JSON message for later steps, e.g. `{ call: 'invocationId' }` to answer
   * a server's invocation. Unlike ids saved from HTTP bodies these are not replaced in observations (a short id
   * would match inside other text); server-chosen invocation ids have their own placeholders.
   */
  readonly save?: Readonly<Record<string, string>>;
}

/** Counts one message among what arrived during a `listen` step and reports which named range the count fell in. */
export interface CountRule {
  /** The message counted, without its separator, e.g. `{"type":6}`. */
  readonly message: string;
  /** Named inclusive ranges; the observation is the name of the range the count is in. */
  readonly ranges: Readonly<Record<string, readonly [number, number]>>;
}

/**
 * Waits a fixed time and observes every message that arrived meanwhile (for "nothing happens" and for periodic
 * messages). With `count`, that message is counted instead of listed.
 */
export interface ListenStep {
  /** Milliseconds. */
  readonly listen: number;
  readonly socket?: string;
  readonly count?: CountRule;
}

/**
 * Waits until the server closes the socket (at most `timeoutMs`, default 5 s). Observed: the close code, the
 * messages not yet observed, and, with `withinMs`, whether the close came within those bounds (ms since the
 * previous step ended).
 */
export interface ClosedStep {
  readonly closed: true;
  readonly socket?: string;
  readonly withinMs?: readonly [number, number];
  readonly timeoutMs?: number;
}

/**
 * The client closes the socket: with a close frame (`code`; `true` for 1000; `'no status'` for a close frame
 * without a status code, as the official Node client sends on `stop()`), or `'drop'` to cut the connection without
 * one (a network failure, as before a stateful reconnect). On a Server-Sent Events channel any value aborts the
 * stream's request.
 */
export interface CloseStep {
  readonly close: number | true | 'drop' | 'no status';
  readonly socket?: string;
}

/** Waits `wait` ms. */
export interface WaitStep {
  readonly wait: number;
}

/**
 * Opens a Server-Sent Events stream (`GET` with `Accept: text/event-stream`) as a named channel. Observed: the
 * status and headers; the channel's events' data is then read with `receive`/`listen`/`closed` like a socket.
 */
export interface SseStep {
  /** The query string, e.g. `?id={{token}}`. */
  readonly sse: string;
  readonly socket?: string;
  /** Further request headers, e.g. an `origin`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Further response headers to observe (lower case). */
  readonly observe?: readonly string[];
  /** Also observe the raw text of the stream's first bytes (the `:\r\n` comment, event framing). */
  readonly rawPrefix?: number;
}

/** What the `GetAnswer` handler of an official client does: return a value, or throw an error with a message. */
export type AnswerBehaviour = { readonly returns: unknown } | { readonly throws: string };

/**
 * Starts the official client (`@microsoft/signalr`, unmodified) over one transport. Observed: that it connected and
 * its connection id, or the error `start()` rejected with. The id is saved as `{{<client>.id}}`. The client records
 * every call of `ReceiveMessage` and `Values` the server makes, for `events` steps.
 */
export interface ClientStartStep {
  readonly start: TransportName;
  /** The client's name (default `client`), for scenarios with several. */
  readonly client?: string;
  /** Query string of the hub URL without `?`, e.g. `user=alice`. */
  readonly query?: string;
  readonly skipNegotiation?: boolean;
  /** Builds the client `withStatefulReconnect()`. */
  readonly statefulReconnect?: boolean;
  /** The client's `GetAnswer` handler (each question is recorded as an event); absent: no handler. */
  readonly answer?: AnswerBehaviour;
}

/**
 * A call of the official client: `invoke` (default), `send` or `stream` of a hub method. Observed: the result or
 * the error's message (`invoke`), that it was sent (`send`), or the items and how the stream ended (`stream`).
 */
export interface ClientCallStep {
  /** The hub method. */
  readonly call: string;
  readonly kind?: 'invoke' | 'send' | 'stream';
  readonly client?: string;
  /** Arguments; strings may name saved values (`{{client.id}}`). */
  readonly args?: readonly unknown[];
  /** A client-to-server stream (a `Subject`) passed after `args`: these items, then completion or `error`. */
  readonly upload?: { readonly items: readonly unknown[]; readonly error?: string };
  /** For `stream`: dispose the subscription (cancel the stream) once this many items arrived. */
  readonly take?: number;
  /** Default 10 s. */
  readonly timeoutMs?: number;
}

/** Waits for `events` server-to-client calls on an official client and observes them as `[method, ...args]`. */
export interface ClientEventsStep {
  readonly events: number;
  readonly client?: string;
  /** Default 10 s. */
  readonly timeoutMs?: number;
}

/**
 * Observes the HTTP requests an official client made so far: each distinct `METHOD path → status`, sorted (how
 * many polls ran, and when, is timing). Only requests of its `HttpClient`: negotiate, long polls, sends.
 */
export interface ClientRequestsStep {
  readonly requests: string;
}

/** Stops an official client (`stop()`). Observed: the error `onclose` reported, `(none)` for a clean stop. */
export interface ClientStopStep {
  /** The client's name. */
  readonly stop: string;
}

/** Waits for the server to end an official client's connection. Observed: the error `onclose` reported. */
export interface ClientClosedStep {
  /** The client's name. */
  readonly clientClosed: string;
  /** Default 10 s. */
  readonly timeoutMs?: number;
}

/** One step of a scenario. */
export type Step =
  | HttpStep
  | AwaitHttpStep
  | NegotiateStep
  | OpenStep
  | SendStep
  | ReceiveStep
  | ListenStep
  | ClosedStep
  | CloseStep
  | WaitStep
  | SseStep
  | ClientStartStep
  | ClientCallStep
  | ClientEventsStep
  | ClientRequestsStep
  | ClientStopStep
  | ClientClosedStep;

/** One observed fact, in the order the steps produced them. Values are normalised (see `normalise.ts`). */
export type ObservationEntry = Readonly<Record<string, unknown>>;

/** Everything one server did in one scenario. */
export type Observation = readonly ObservationEntry[];

/**
 * Marks a scenario whose outcome deliberately differs between the servers. `entry` is the `###` heading of the
 * entry in `KNOWN-DIFFERENCES.md` that explains why; the suite asserts each server's own observation instead of
 * their equality, so the difference is pinned from both sides (a change on either side fails the scenario).
 */
export interface KnownDifference {
  readonly entry: string;
  /** What ASP.NET Core does. */
  readonly reference: Observation;
  /** What fastify-signalr does. */
  readonly ours: Observation;
}

/** A scenario: a name, the server settings it runs with, and its steps. */
export interface Scenario {
  /** Unique within the suite; the jest test name. */
  readonly name: string;
  readonly settings?: ServerSettings;
  readonly steps: readonly Step[];
  readonly knownDifference?: KnownDifference;
  /**
   * Set for a scenario that sends to every connection of its server (`SendMessage`, `SendOthers`, …): it runs
   * while no other scenario of its table runs, so neither sees the other's messages. Scenarios run concurrently
   * otherwise.
   */
  readonly exclusive?: boolean;
}
