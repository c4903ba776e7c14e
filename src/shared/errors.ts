/**
 * The error catalogue, in two parts:
 *
 * * every text a peer sees, worded exactly as ASP.NET Core SignalR words it, so clients that match on .NET's
 *   messages keep working: docs/protocol.md §1.9 (HTTP bodies), §2.2 (handshake, see `protocol/handshake.ts`), §2.6
 *   (invocation outcomes), §2.7 (client results), §2.8 (Close) and §3 (what servers tell each other over Redis);
 * * the stable codes of the errors this server raises towards the application and the operator ({@link errorCodes}),
 *   as Fastify gives its own `FST_ERR_*` codes: match on `error.code`, as the texts may be reworded.
 */

/** What one error code stands for: the errors that carry it (by `name`), and when the server raises them. */
export interface ErrorCodeEntry {
  /** The `name`s of the errors carrying the code: the class, or the .NET exception name a peer may also see. */
  readonly names: readonly string[];
  /** When the server raises it. */
  readonly when: string;
}

/** The stable code of an error this server raises towards the application or the operator ({@link errorCodes}). */
export type SignalRErrorCode =
  | 'SIGNALR_ERR_OPTIONS'
  | 'SIGNALR_ERR_CONFIG'
  | 'SIGNALR_ERR_HUB_DEFINITION'
  | 'SIGNALR_ERR_UNKNOWN_HUB'
  | 'SIGNALR_ERR_REDIS_CONFIGURATION'
  | 'SIGNALR_ERR_REDIS_STARTUP'
  | 'SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER'
  | 'SIGNALR_ERR_BACKPLANE_UNAVAILABLE'
  | 'SIGNALR_ERR_GROUP_ACK_TIMEOUT'
  | 'SIGNALR_ERR_USER_GROUPS_NEED_PRESENCE'
  | 'SIGNALR_ERR_CLIENT_RESULT_CONNECTION'
  | 'SIGNALR_ERR_MANAGEMENT_OPTIONS'
  | 'SIGNALR_ERR_EMITTER_CLOSED';

/**
 * The stable codes of the errors this server raises towards the application and the operator. An error carrying
 * one has it as its `code` property ({@link isSignalRError}); its `name` and message stay what .NET would say
 * where a peer may see them. The README's Errors table lists the same entries.
 */
export const errorCodes: Readonly<Record<SignalRErrorCode, ErrorCodeEntry>> = {
  SIGNALR_ERR_OPTIONS: {
    names: ['SignalROptionsError'],
    when: 'The plugin options are invalid; registering the plugin fails.',
  },
  SIGNALR_ERR_CONFIG: {
    names: ['ConfigError'],
    when: 'An environment variable or the `CONFIG_FILE` holds an invalid value (`loadConfig`, `loadServerConfig`).',
  },
  SIGNALR_ERR_HUB_DEFINITION: {
    names: ['HubDefinitionError'],
    when: 'A hub class cannot be served: not a `Hub`, an overloaded method, a schema or authorization for no method.',
  },
  SIGNALR_ERR_UNKNOWN_HUB: {
    names: ['Error'],
    when: '`app.signalr.hub(...)` names a hub class or path that no registration serves.',
  },
  SIGNALR_ERR_REDIS_CONFIGURATION: {
    names: ['RedisConfigurationError'],
    when: 'The Redis URL, connection string or connection options are invalid.',
  },
  SIGNALR_ERR_REDIS_STARTUP: {
    names: ['RedisBackplaneStartupError'],
    when: 'The Redis backplane could not start: Redis refused the credentials or the TLS handshake, the ACL forbids its channels, or (with `abortConnect`) Redis was not reached in time.',
  },
  SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER: {
    names: ['RedisShardedPubSubError'],
    when: 'The redis option `shardedPubSub` was given with a Redis that is not a Redis Cluster (a single server, Sentinel, a Unix socket) or with streams mode; registering the plugin fails.',
  },
  SIGNALR_ERR_BACKPLANE_UNAVAILABLE: {
    names: ['RedisConnectionException'],
    when: 'A publish or Redis command could not be done: Redis is not connected, the publish queue is full or timed out, or the backplane is closing.',
  },
  SIGNALR_ERR_GROUP_ACK_TIMEOUT: {
    names: ['TaskCanceledException', 'GroupCommandTimeoutError'],
    when: 'A group change for a connection on another server got no acknowledgement in time.',
  },
  SIGNALR_ERR_USER_GROUPS_NEED_PRESENCE: {
    names: ['Error'],
    when: 'A user-level group change on a server without fleet presence (the redis option `presence: true`).',
  },
  SIGNALR_ERR_CLIENT_RESULT_CONNECTION: {
    names: ['IOException'],
    when: 'A client result was asked of a connection that does not exist, or that ended before it answered.',
  },
  SIGNALR_ERR_MANAGEMENT_OPTIONS: {
    names: ['ManagementOptionsError'],
    when: 'The management API options are invalid (its `accessKey`).',
  },
  SIGNALR_ERR_EMITTER_CLOSED: {
    names: ['EmitterClosedError'],
    when: 'An emitter was used after `close()`, or closed while a call waited.',
  },
};

/** An error of this server with a stable code. */
export interface SignalRError extends Error {
  /** Which error it is; stable across releases, unlike the message. */
  readonly code: SignalRErrorCode;
}

/**
 * Whether `error` is one of this server's coded errors (with `code`, that code): the way to recognise an error
 * whose class is not exported, such as a backplane publish that failed.
 */
export function isSignalRError(error: unknown, code?: SignalRErrorCode): error is SignalRError {
  if (!(error instanceof Error)) return false;
  const actual = (error as { code?: unknown }).code;
  return typeof actual === 'string' && Object.hasOwn(errorCodes, actual) && (code === undefined || actual === code);
}

/**
 * Bodies of the HTTP error answers of the transport endpoints (docs/protocol.md §1.9;
 * src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0).
 */
export const HttpErrors = {
  connectionIdRequired: 'Connection ID required',
  noConnectionWithThatId: 'No Connection with that ID',
  cannotChangeTransports: 'Cannot change transports mid-connection',
  postNotAllowedOnWebSockets: 'POST requests are not allowed for WebSocket connections.',
  deleteNotAllowed: 'Cannot terminate this connection using the DELETE endpoint.',
  transportNotSupported: (transport: string) => `${transport} transport not supported by this end point type`,
  /** Ours: the server reached its connection limit (.NET has no such limit; 503 is what a proxy would say). */
  tooManyConnections: 'The server has reached its maximum number of connections.',
  /** Ours: a graceful shutdown is under way; a load balancer retries the request on another server. */
  shuttingDown: 'The server is shutting down.',
  /**
   * A request of a connection from another user than the one that negotiated it
   * (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@main L1156-L1162).
   */
  userChanged: 'The user associated with this connection changed.',
} as const;

/**
 * Completion errors of invocations (docs/protocol.md §2.6;
 * src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0, ErrorMessageHelper.cs).
 */
export const InvocationErrors = {
  /** Binding failed: unknown method, wrong argument count or types. */
  failedToInvoke: (target: string) => `Failed to invoke '${target}' due to an error on the server.`,
  /** The hub method threw. */
  unexpectedError: (target: string) => `An unexpected error occurred invoking '${target}' on the server.`,
  methodDoesNotExist: 'Method does not exist.',
  /** The connection has as many streams open in that direction as `maximumStreamsPerConnection` allows. */
  tooManyStreams: (direction: 'server-to-client' | 'client-to-server', limit: number) =>
    `The connection already has ${limit} ${direction} streams open, the most maximumStreamsPerConnection allows.`,
  argumentCount: (provided: number, expected: number) =>
    `Invocation provides ${provided} argument(s) but target expects ${expected}.`,
  bindingArguments:
    'Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.',
  unauthorized: (target: string) => `Failed to invoke '${target}' because user is unauthorized`,
  streamingMethodWithInvocation: (target: string) =>
    `The client attempted to invoke the streaming '${target}' method with a non-streaming invocation.`,
  nonStreamingMethodWithStreamInvocation: (target: string) =>
    `The client attempted to invoke the non-streaming '${target}' method with a streaming invocation.`,
  invocationIdInUse: (id: string) => `Invocation ID '${id}' is already in use.`,
  streamCountMismatch: (sent: number, expected: number) =>
    `Client sent ${sent} stream(s), Hub method expects ${expected}.`,
  streamingError: 'An error occurred on the server while streaming results.',
  /** A streaming method returned null/undefined or something that is not iterable (.NET names its own types). */
  invalidStreamReturn: (methodName: string) =>
    `The value returned by the streaming method '${methodName}' is not a ChannelReader<> or IAsyncEnumerable<>.`,
} as const;

/**
 * How a client-to-server stream can end with an error inside the hub method (docs/protocol.md §2.9). The hub method
 * sees a `HubException` with the client's own error text when the client completes the stream with an error.
 */
export const UploadStreamErrors = {
  /** An item the stream's item schema rejects ends the stream (`HubException`; detail rule applies). */
  itemBinding: 'Failed to bind Stream message.',
  /** The connection ended while the stream was open (`OperationCanceledException`; HubConnectionContext). */
  connectionClosed: 'The underlying connection was closed.',
} as const;

/** Errors of group membership past its bounds (`HubException`s: the caller sees them). */
export const GroupErrors = {
  tooManyGroups: (connectionId: string, limit: number) =>
    `Connection '${connectionId}' is already in ${limit} groups, the most maximumGroupsPerConnection allows.`,
  nameTooLong: (length: number, limit: number) =>
    `The group name is ${length} characters long, more than maximumGroupNameLength (${limit}) allows.`,
};

/** Errors a server-to-client invocation (client result) rejects with (docs/protocol.md §2.7). */
export const ClientResultErrors = {
  /** The invocation's `AbortSignal` aborted (a timeout, or the caller gave up) — a `HubException`. */
  canceled: 'Invocation canceled by the server.',
  /** The connection went away while the result was awaited — an `IOException`. */
  connectionDisconnected: (connectionId: string) => `Connection '${connectionId}' disconnected.`,
  /** The connection owes as many results as it may; the new invocation is refused — a `HubException`. */
  tooManyForConnection: (connectionId: string, limit: number) =>
    `Connection '${connectionId}' already has ${limit} client results pending, the most maximumPendingClientResultsPerConnection allows.`,
  /** The server waits for as many results as it may — a `HubException`. */
  tooManyForServer: (limit: number) =>
    `The server already waits for ${limit} client results, the most maximumPendingClientResults allows.`,
  /** No such connection — an `IOException`. */
  connectionDoesNotExist: (connectionId: string) => `Connection '${connectionId}' does not exist.`,
  /** A Completion for a server-initiated invocation came from another connection than the one invoked. */
  wrongConnection: (connectionId: string, invocationId: string) =>
    `Connection ID '${connectionId}' is not valid for invocation ID '${invocationId}'.`,
  /**
   * A Completion with neither `result` nor `error` (a void completion) — a `HubException` with .NET's default
   * message, as `new HubException(null)` has (ClientResultsManager: `HasResult` false, `Error` null).
   */
  noResult: "Exception of type 'Microsoft.AspNetCore.SignalR.HubException' was thrown.",
  /** `invoke` inside `onConnected` — an `InvalidOperationException` (HubCallerClients: no client results there). */
  notAllowedInOnConnected: 'Client results inside OnConnectedAsync Hub methods are not allowed.',
} as const;

/**
 * The `error` of a Close message sent because the connection failed (docs/protocol.md §2.8;
 * src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L200-L261).
 */
export const CLOSE_WITH_ERROR = 'Connection closed with an error.';

/**
 * Why a connection fails; the Close message carries the text only in its detail (`enableDetailedErrors`), after
 * {@link CLOSE_WITH_ERROR} and the .NET exception name each entry names (docs/protocol.md §2.8, §2.10).
 */
export const ConnectionErrors = {
  /** No message within `clientTimeoutIntervalMs` after the client's first Ping — an `OperationCanceledException`. */
  clientTimeout: "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.",
  /** Ours: more outbound bytes wait for the client than allowed — a `SlowClientException`. */
  slowClient: (waiting: number, limit: number) =>
    `${waiting} bytes were waiting for the client, more than maximumBufferedOutboundBytes (${limit}).`,
  /**
   * A stateful-reconnect `Sequence` beyond what the server sent — an `InvalidOperationException`
   * (src/SignalR/common/Shared/MessageBuffer.cs@v10.0.0 L211-L247).
   */
  sequenceIdTooLarge: "Sequence ID greater than amount of messages we've received.",
  /**
   * A message from another server lacks the connection's protocol: .NET aborts the connection with this text
   * (src/SignalR/server/Core/src/SerializedHubMessage.cs@v10.0.0 L54-L72).
   */
  protocolUnavailable:
    'This message was received from another server that did not have the requested protocol available.',
} as const;

/** What the Redis lifetime manager answers with (docs/protocol.md §3.6, §3.7). */
export const BackplaneErrors = {
  /**
   * The Completion error a server publishes when the invoked client left before answering
   * (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L570-L574).
   */
  connectionDisconnected: 'Connection disconnected.',
  /** A group command's ack did not come: .NET's `AckHandler` cancels the wait — a `TaskCanceledException`. */
  ackTimeout: 'A task was canceled.',
  /** Acks still awaited when the manager closes. */
  shuttingDown: 'The server is shutting down.',
  /** A user-level group change on a server without fleet presence (the caller sees it with detailed errors only). */
  userGroupsNeedPresence: 'User-level groups need presence on the Redis backplane (the redis option `presence: true`).',
} as const;

/**
 * .NET's detail rule (ErrorMessageHelper.cs): the generic sentence, followed by ` <ExceptionType>: <message>` when
 * the error is a {@link HubException}-like error or detailed errors are enabled.
 */
export function withErrorDetail(sentence: string, error: unknown, detailed: boolean): string {
  if (!(error instanceof Error)) return detailed && error !== undefined ? `${sentence} ${String(error)}` : sentence;
  if (!detailed && !(error instanceof HubException)) return sentence;
  return `${sentence} ${error.name}: ${error.message}`;
}

/**
 * An error whose message reaches the client, whatever `enableDetailedErrors` says — .NET's `HubException`.
 * Throw it from a hub method to tell the caller why the call failed.
 */
export class HubException extends Error {
  override readonly name = 'HubException';
}

/**
 * An error carrying a .NET exception type name, for the detail of error texts (`IOException`, ...), and, when it
 * reaches the application, a stable code.
 */
export function namedError(name: string, message: string, code?: SignalRErrorCode): Error {
  const error = new Error(message);
  error.name = name;
  if (code !== undefined) Object.defineProperty(error, 'code', { value: code, enumerable: true });
  return error;
}

/** A plain `Error` with a stable code. */
export function codedError(code: SignalRErrorCode, message: string): SignalRError {
  const error = new Error(message) as Error & { code: SignalRErrorCode };
  error.code = code;
  return error;
}

/** A user-level group change on a server without fleet presence ({@link BackplaneErrors.userGroupsNeedPresence}). */
export function userGroupsNeedPresence(): SignalRError {
  return codedError('SIGNALR_ERR_USER_GROUPS_NEED_PRESENCE', BackplaneErrors.userGroupsNeedPresence);
}
