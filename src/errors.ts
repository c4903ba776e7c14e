/**
 * The error catalogue: every text a peer sees, worded exactly as ASP.NET Core SignalR words it, so clients that
 * match on .NET's messages keep working. docs/protocol.md §1.9 (HTTP bodies), §2.2 (handshake, see
 * `protocol/handshake.ts`), §2.6 (invocation outcomes), §2.7 (client results) and §2.8 (Close).
 */

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

/** An error carrying a .NET exception type name, for the detail of error texts (`IOException`, ...). */
export function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
