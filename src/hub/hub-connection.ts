/**
 * One hub connection: the handshake, the inbound message loop, keep-alive, invocation dispatch, streams and Close,
 * as ASP.NET Core's `HubConnectionContext` + `HubConnectionHandler` + `DefaultHubDispatcher` do it.
 *
 * State this object owns: the chosen protocol and its reader, the inbound queue and the invocation slots
 * (`maximumParallelInvocationsPerClient`), the open streams in both directions, keep-alive timestamps, `items`,
 * and the connection's abort signal. Routing state (groups, users) belongs to the lifetime manager; bytes on the
 * wire belong to the transport.
 *
 * The message loop (docs/protocol.md §2.6, §2.9). Messages are handled one at a time, in order, as .NET's receive loop
 * awaits each dispatch. Two things make a message wait, and everything behind it with it:
 * - an Invocation of a plain method when every invocation slot is taken;
 * - a StreamItem for a client-to-server stream whose buffer is full (`streamBufferCapacity`).
 * While a message waits, raw input is held, and past {@link HELD_INPUT_PAUSE_BYTES} the transport stops reading,
 * which pushes back on the client through TCP. So a flood of invocations or a stalled upload consumer costs a
 * bounded amount of memory, and nothing is dropped. Streaming invocations and invocations of methods with
 * client-to-server stream parameters never wait for a slot and do not hold one, as in .NET.
 */
import {
  HANDSHAKE_SUCCESS,
  HandshakeErrors,
  HandshakeReader,
  parseHandshakeRequest,
  writeHandshakeError,
} from '../../protocol/handshake';
import type { HubMessageReader, HubProtocol } from '../../protocol/hub-protocol';
import {
  MessageType,
  type CloseMessage,
  type CompletionMessage,
  type HubMessage,
  type InvocationMessage,
  type StreamInvocationMessage,
  type StreamItemMessage,
} from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';
import type { ConnectionApplication, HttpConnection } from '../connections/http-connection';
import {
  CLOSE_WITH_ERROR,
  ClientResultErrors,
  HubException,
  InvocationErrors,
  namedError,
  withErrorDetail,
} from '../errors';
import type { HeartbeatParticipant } from '../heartbeat';
import type { ManagedConnection } from '../lifetime/hub-lifetime-manager';
import type { SerializedHubMessage } from '../lifetime/serialized-message';
import {
  checkValue,
  type GroupManager,
  type HubBinding,
  type HubCallerClients,
  type HubCallerContext,
  type HubHttpRequest,
} from './hub';
import { CallerHubClients, GuardedHubClients, type ClientInvokeGuard } from './hub-clients';
import type { HubEndpoint } from './hub-endpoint';
import type { HubMethod } from './hub-methods';
import type { ConnectionEndStatus, InvocationOutcome } from './hub-stats';
import { ResultStream, type ResultStreamHost } from './result-stream';
import { MessageBuffer, SEQUENCE_ID_TOO_LARGE } from './message-buffer';
import { UploadStream } from './upload-stream';

/** Hub method failures of one connection logged in full per window; see `HubConnection.logFailure`. */
const FAILURES_LOGGED_PER_WINDOW = 5;
const FAILURE_WINDOW_MS = 10_000;

/** Hub method failures of one connection in the current log window. */
interface FailureWindow {
  logged: number;
  suppressed: number;
  lastMethod: string;
  lastError: string;
}

/**
 * Raw bytes held while the message loop waits (for `onConnected`, an invocation slot, or room in an upload stream)
 * before the transport is asked to stop reading: ASP.NET Core's pipe pause threshold (`ApplicationMaxBufferSize`,
 * 64 KiB).
 */
const HELD_INPUT_PAUSE_BYTES = 64 * 1024;

/** A message the reader could not parse: it closes the connection when the loop reaches it. */
class InvalidInput {
  constructor(readonly error: unknown) {}
}

type InboxEntry = HubMessage | InvalidInput;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

type Phase = 'handshake' | 'starting' | 'connected' | 'closed';

/** How a failed invocation counts in metrics: a `HubException` is an answer meant for the caller. */
function failureOutcome(error: unknown): InvocationOutcome {
  return error instanceof HubException ? 'hub_exception' : 'error';
}

/** What a hub instance may do with client results where it runs (docs/protocol.md §2.7). */
const ClientInvoke = {
  /** A plain invocation holding a slot: the first client invocation gives the slot up (.NET 8+). */
  ReleasesSlot: 0,
  /** Streaming invocations, stream calls, `onDisconnected`: no slot to give up. */
  Free: 1,
  /** `onConnected`: refused, as in .NET. */
  Refused: 2,
} as const;
type ClientInvoke = (typeof ClientInvoke)[keyof typeof ClientInvoke];

/**
 * The services of one hub instance: its connection's, plus what belongs to the invocation — its abort signal and,
 * for plain invocations, its invocation slot (.NET's per-invocation `HubCallerClients`).
 */
class InvocationScope implements HubBinding, ClientInvokeGuard {
  private callerClients: HubCallerClients | undefined;

  constructor(
    private readonly connection: HubConnection,
    private mode: ClientInvoke,
    /** A signal of the invocation's own (a stream's); otherwise the connection's, looked up when the hub reads it. */
    private readonly signal?: AbortSignal,
  ) {}

  get abortSignal(): AbortSignal {
    return this.signal ?? this.connection.connectionAborted;
  }

  get clients(): HubCallerClients {
    if (this.mode === ClientInvoke.Free) return this.connection.hubClients;
    return (this.callerClients ??= this.connection.guardedClients(this));
  }

  get groups(): GroupManager {
    return this.connection.groups;
  }

  get context(): HubCallerContext {
    return this.connection;
  }

  beforeClientInvoke(): void {
    if (this.mode === ClientInvoke.Refused) {
      throw namedError('InvalidOperationException', ClientResultErrors.notAllowedInOnConnected);
    }
    // The client's answer is read in order behind its other messages, which may need this slot (HubCallerClients).
    this.releaseSlot();
  }

  /** Gives the invocation slot back, once. */
  releaseSlot(): void {
    if (this.mode !== ClientInvoke.ReleasesSlot) return;
    this.mode = ClientInvoke.Free;
    this.connection.releaseSlot();
  }
}

/** A connection of one hub, from handshake to close. */
export class HubConnection
  implements ConnectionApplication, ManagedConnection, HeartbeatParticipant, HubCallerContext, ResultStreamHost
{
  readonly connectionId: string;
  // `items` and the abort signal are made on first use: most connections never read them, and together they are
  // about 0.5 KB of every idle connection (an AbortSignal is an EventTarget with its own listener map).
  private itemsMap: Map<unknown, unknown> | null = null;
  private abortController: AbortController | null = null;
  readonly user: unknown;

  private phase: Phase = 'handshake';
  private protocolInUse: HubProtocol | null = null;
  private reader: HubMessageReader | null = null;
  private handshake: HandshakeReader | null;
  private sharedClients: CallerHubClients | undefined;

  /**
   * When the connection's authentication expires (ms since the epoch), with `closeOnAuthenticationExpiration`;
   * checked on every heartbeat tick.
   */
  authenticationExpiresAt = Infinity;

  // Keep-alive (docs/protocol.md §2.8): pings every keepAliveInterval; the client timeout runs once the client pinged.
  private readonly startedAt: number;
  private lastPingAt = 0;
  private lastReceiveAt: number;
  private clientTimeoutArmed = false;

  // The message loop: parsed messages in order, raw input held while a message waits, and the loop's state.
  private readonly inbox: InboxEntry[] = [];
  private inboxHead = 0;
  private heldInput: Buffer[] = [];
  private heldInputBytes = 0;
  private inputPaused = false;
  private inputFailed = false;
  /** Whether the message at the head of the inbox is waiting (for a slot, or room in an upload stream). */
  private blocked = false;
  private pumping = false;
  private pumpAgain = false;
  /** The bound invocation at the head of the inbox while it waits for a slot (bound once, as .NET's parser does). */
  private waitingMethod: HubMethod | null = null;
  private waitingArgs: unknown[] | null = null;
  private activeInvocations = 0;

  /** Failures logged and counted in the current window of {@link logFailure}; `null` between windows. */
  private failureWindow: FailureWindow | null = null;
  // Streams (docs/protocol.md §2.9), created on first use: client-to-server by stream id, server-to-client by
  // invocation id.
  private uploads: Map<string, UploadStream> | null = null;
  private streams: Map<string, ResultStream> | null = null;

  private hubConnected = false;
  private registered = false;
  /** Sequence numbers and the replay buffer, when stateful reconnect is on (docs/protocol.md §2.10). */
  private messageBuffer: MessageBuffer | null = null;

  // Operations: what a graceful shutdown waits for, and why the connection ended (for metrics and logs).
  /** Plain invocations and stream calls running now. */
  private running = 0;
  /** Set by a graceful shutdown: close, with this `allowReconnect`, once no invocation or stream runs. */
  private drainAllowReconnect: boolean | null = null;
  private endStatus: ConnectionEndStatus = 'normal_closure';

  constructor(
    readonly http: HttpConnection,
    private readonly endpoint: HubEndpoint,
    readonly httpRequest: HubHttpRequest,
    readonly userIdentifier: string | undefined,
    now: number,
  ) {
    this.connectionId = http.connectionId;
    this.user = httpRequest.user;
    this.startedAt = now;
    this.lastReceiveAt = now;
    this.handshake = new HandshakeReader(endpoint.options.maximumReceiveMessageSize);
  }

  // ------------------------------------------------------------------------------------------------------------
  // HubCallerContext

  get transport(): TransportName {
    return this.http.transport ?? 'WebSockets';
  }

  get protocol(): string {
    return this.protocolInUse?.name ?? '';
  }

  get items(): Map<unknown, unknown> {
    return (this.itemsMap ??= new Map());
  }

  get connectionAborted(): AbortSignal {
    if (this.abortController === null) {
      this.abortController = new AbortController();
      // Read for the first time after the connection ended: already aborted, as it would be had it been made early.
      if (this.phase === 'closed') this.abortController.abort();
    }
    return this.abortController.signal;
  }

  abort(): void {
    // Context.Abort(): a Close without error and without allowReconnect
    // (src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L200-L261).
    this.close({ type: MessageType.Close });
  }

  // ------------------------------------------------------------------------------------------------------------
  // What hub instances of this connection are bound to

  /** The connection's clients without a client-results guard, shared by every hub instance that needs none. */
  get hubClients(): CallerHubClients {
    return (this.sharedClients ??= new CallerHubClients(this.endpoint.lifetime, this.connectionId));
  }

  /** The connection's clients with `invoke` consulting `guard` first. */
  guardedClients(guard: ClientInvokeGuard): HubCallerClients {
    return new GuardedHubClients(this.hubClients, guard);
  }

  get groups(): GroupManager {
    return this.endpoint.groups;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Writing

  /** Writes a message serialized once for every recipient (lifetime-manager sends: Invocations). */
  write(message: SerializedHubMessage): void {
    const protocol = this.protocolInUse;
    if (protocol === null || this.phase === 'closed') return;
    let bytes: Buffer;
    try {
      bytes = message.getBytes(protocol);
    } catch (error) {
      this.endpoint.log.error(
        { event: 'signalr.connection.error', err: error, connectionId: this.connectionId },
        'hub message could not be serialized',
      );
      this.closeWithError(error);
      return;
    }
    this.deliver(bytes, true);
  }

  /** Writes one message for this connection only. */
  private send(message: HubMessage): void {
    if (this.protocolInUse === null || this.phase === 'closed') return;
    this.deliver(this.protocolInUse.writeMessage(message), message.type <= MessageType.CancelInvocation);
  }

  /**
   * Every hub message to the client goes through here: sequenced ones (types 1–5) are kept for replay when
   * stateful reconnect is on, and a client that lets too much wait is closed.
   */
  private deliver(bytes: Buffer, sequenced: boolean): void {
    this.endpoint.stats.messagesSent++;
    if (sequenced && this.messageBuffer !== null) this.messageBuffer.recordSent(bytes);
    this.http.write(bytes);
    const limit = this.endpoint.options.maximumBufferedOutboundBytes;
    if (limit === null) return;
    const waiting = Math.max(this.http.pendingOutbound, this.messageBuffer?.bufferedBytes ?? 0);
    if (waiting > limit) this.closeSlowClient(waiting, limit);
  }

  /**
   * A client that does not read what it is sent: rather than let its messages grow server memory, the connection is
   * closed (the Close message is queued behind the rest; the transport cuts the socket if it does not drain).
   */
  private closeSlowClient(waiting: number, limit: number): void {
    this.endpoint.log.warn(
      { event: 'signalr.connection.slow_client', connectionId: this.connectionId, waiting, limit },
      'client too slow: connection closed',
    );
    this.closeWithError(
      namedError(
        'SlowClientException',
        `${waiting} bytes were waiting for the client, more than maximumBufferedOutboundBytes (${limit}).`,
      ),
    );
  }

  // ------------------------------------------------------------------------------------------------------------
  // Input and the message loop

  onReceive(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastReceiveAt = Date.now();
    if (this.phase === 'handshake') {
      this.receiveHandshake(chunk);
      return;
    }
    if (this.phase === 'connected' && !this.blocked && !this.pumping && this.heldInput.length === 0) {
      this.parse(chunk);
      this.pump();
      return;
    }
    this.hold(chunk);
  }

  private hold(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.heldInput.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.heldInputBytes += chunk.length;
    if (!this.inputPaused && this.heldInputBytes >= HELD_INPUT_PAUSE_BYTES) {
      this.inputPaused = true;
      this.http.pauseInput();
    }
  }

  private readonly enqueue = (message: HubMessage): void => {
    if (message.type !== MessageType.Ping) this.endpoint.stats.messagesReceived++;
    this.inbox.push(message);
  };

  /** Parses a chunk into the inbox; an invalid message becomes an entry that closes the connection in its turn. */
  private parse(chunk: Uint8Array): void {
    if (this.inputFailed) return;
    try {
      this.reader!.push(chunk, this.enqueue);
    } catch (error) {
      // Messages before the invalid one are still handled first, as .NET handles each before parsing the next.
      this.inputFailed = true;
      this.inbox.push(new InvalidInput(error));
    }
  }

  /**
   * Lets the loop go on after something it may have been waiting for happened (a slot freed, room in an upload
   * stream). Called from hub code too, so it never re-enters a running loop: that loop looks again instead.
   */
  private wake(): void {
    if (this.pumping) this.pumpAgain = true;
    else if (this.blocked) this.pump();
  }

  /** {@link wake} as a callback for upload streams, made on first use: most connections never upload. */
  private wakeCallback: (() => void) | null = null;

  /** Handles queued messages, then held input, until a message has to wait or nothing is left. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    const wasBlocked = this.blocked;
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.blocked = false;
        this.drain();
      } while (this.pumpAgain && this.phase === 'connected');
    } catch (error) {
      // Hub code runs inside its own guards; this is a fault of ours. It ends this connection, not the process
      // (the transport's event handler would otherwise see it).
      this.endpoint.log.error(
        { event: 'signalr.connection.error', err: error, connectionId: this.connectionId },
        'hub message loop failed',
      );
      this.closeWithError(error);
    } finally {
      this.pumping = false;
    }
    if (this.phase !== 'connected' || this.blocked) return;
    // A waiting loop reads nothing, so the client timeout restarts when it goes on (.NET stops that timer while a
    // message is being dispatched).
    if (wasBlocked) this.lastReceiveAt = Date.now();
    if (this.inputPaused) {
      this.inputPaused = false;
      this.http.resumeInput();
    }
  }

  private drain(): void {
    const inbox = this.inbox;
    while (this.phase === 'connected') {
      if (this.inboxHead < inbox.length) {
        if (!this.dispatch(inbox[this.inboxHead])) {
          this.blocked = true;
          return;
        }
        this.inboxHead++;
        continue;
      }
      inbox.length = 0;
      this.inboxHead = 0;
      const chunk = this.heldInput.shift();
      if (chunk === undefined) return;
      this.heldInputBytes -= chunk.length;
      this.parse(chunk);
    }
  }

  /** Handles one message; returns false when it has to wait (it stays at the head of the inbox). */
  private dispatch(entry: InboxEntry): boolean {
    if (entry instanceof InvalidInput) {
      this.endpoint.log.debug({ err: entry.error, connectionId: this.connectionId }, 'invalid hub message');
      this.closeWithError(entry.error);
      return true;
    }
    const buffer = this.messageBuffer;
    if (buffer === null || entry.type > MessageType.CancelInvocation) return this.handle(entry);
    // Stateful reconnect: a message the client replays after a reconnect that was handled before is skipped.
    if (buffer.isDuplicate()) {
      buffer.received();
      return true;
    }
    const handled = this.handle(entry);
    if (handled) buffer.received();
    return handled;
  }

  /** Handles one message by its type; returns false when it has to wait. */
  private handle(entry: HubMessage): boolean {
    switch (entry.type) {
      case MessageType.Invocation:
        return this.receiveInvocation(entry);
      case MessageType.StreamInvocation:
        this.receiveStreamInvocation(entry);
        return true;
      case MessageType.StreamItem:
        return this.receiveStreamItem(entry);
      case MessageType.Completion:
        this.receiveCompletion(entry);
        return true;
      case MessageType.CancelInvocation:
        // Cancels a running stream; unknown ids (finished streams, plain invocations) are ignored
        // (docs/protocol.md §2.6).
        this.streams?.get(entry.invocationId)?.cancel();
        return true;
      case MessageType.Ping:
        // The first client Ping arms the client timeout
        // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L198-L200).
        this.clientTimeoutArmed = true;
        return true;
      case MessageType.Close:
        // The client is leaving: answer with a plain Close and end
        // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L231-L234).
        this.close({ type: MessageType.Close });
        return true;
      case MessageType.Ack:
        this.messageBuffer?.acknowledge(entry.sequenceId);
        return true;
      case MessageType.Sequence:
        if (this.messageBuffer !== null && !this.messageBuffer.resetSequence(entry.sequenceId)) {
          this.closeWithError(namedError('InvalidOperationException', SEQUENCE_ID_TOO_LARGE));
        }
        return true;
      default:
        return true;
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Invocations

  /**
   * An Invocation. Binding (method lookup, argument count and schemas) comes first and its failures are answered at
   * once, as .NET binds in the parser. A plain method then needs an invocation slot and waits for one; a method
   * with client-to-server stream parameters runs beside the others
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 ProcessInvocation).
   */
  private receiveInvocation(message: InvocationMessage): boolean {
    let method = this.waitingMethod;
    let args = this.waitingArgs;
    if (method === null) {
      method = this.endpoint.methods.get(message.target.toLowerCase()) ?? null;
      if (method === null) {
        this.unknownMethod(message);
        return true;
      }
      args = this.bindArguments(message, method);
      if (args === null) return true;
    }
    if (method.streamParameters !== undefined) {
      this.runStreamCall(message, method, args!);
      return true;
    }
    if (this.activeInvocations >= this.endpoint.options.maximumParallelInvocationsPerClient) {
      this.waitingMethod = method;
      this.waitingArgs = args;
      return false;
    }
    this.waitingMethod = null;
    this.waitingArgs = null;
    this.activeInvocations++;
    this.runInvocation(message, method, args!);
    return true;
  }

  /** Unknown methods fail binding with this HubException, whose detail always shows (docs/protocol.md §2.6). */
  private unknownMethod(message: InvocationMessage | StreamInvocationMessage): void {
    this.reject(
      message.invocationId,
      withErrorDetail(
        InvocationErrors.failedToInvoke(message.target),
        new HubException(InvocationErrors.methodDoesNotExist),
        this.endpoint.options.enableDetailedErrors,
      ),
    );
  }

  /**
   * Runs a plain method in the slot just taken; the slot is released when it settles, or when it first invokes a
   * client. A method that returns a plain value completes synchronously, as in .NET, so its Completion precedes
   * anything the loop does next.
   */
  private runInvocation(message: InvocationMessage, method: HubMethod, args: unknown[]): void {
    const { target, invocationId } = message;
    // The checks .NET makes inside the slot (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0
    // Invoke): invocation kind, then stream count.
    if (method.streaming) {
      this.reject(invocationId, InvocationErrors.streamingMethodWithInvocation(target));
      this.releaseSlot();
      return;
    }
    if (!this.streamCountMatches(message, method)) {
      this.releaseSlot();
      return;
    }
    if (method.authorize !== undefined) {
      this.authorizeThen(method, message, () => this.executeInvocation(message, method, args), () => this.releaseSlot());
      return;
    }
    this.executeInvocation(message, method, args);
  }

  /** Runs an authorized plain method in its slot (see {@link HubConnection.runInvocation}). */
  private executeInvocation(message: InvocationMessage, method: HubMethod, args: unknown[]): void {
    const { target, invocationId } = message;
    const scope = new InvocationScope(this, ClientInvoke.ReleasesSlot);
    let result: unknown;
    const started = this.invocationStarted();
    try {
      result = this.endpoint.filters.invoke(this.endpoint.createHub(scope), method, args, message.headers);
    } catch (error) {
      this.invocationFailed(invocationId, method.name, target, error);
      scope.releaseSlot();
      this.invocationSettled(method.name, failureOutcome(error), started);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => {
          if (invocationId !== undefined) this.completeWithResult(invocationId, target, value);
          scope.releaseSlot();
          this.invocationSettled(method.name, 'success', started);
        },
        (error: unknown) => {
          this.invocationFailed(invocationId, method.name, target, error);
          scope.releaseSlot();
          this.invocationSettled(method.name, failureOutcome(error), started);
        },
      );
      return;
    }
    if (invocationId !== undefined) this.completeWithResult(invocationId, target, result);
    scope.releaseSlot();
    this.invocationSettled(method.name, 'success', started);
  }

  /**
   * Runs a method with client-to-server stream parameters ("stream call"): outside the invocation limit, with its
   * uploads open until it settles (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 Invoke,
   * CleanupInvocation).
   */
  private runStreamCall(message: InvocationMessage, method: HubMethod, args: unknown[]): void {
    const { target, invocationId } = message;
    if (method.streaming) {
      this.reject(invocationId, InvocationErrors.streamingMethodWithInvocation(target));
      return;
    }
    if (!this.streamCountMatches(message, method)) return;
    if (!this.roomForUploads(invocationId, message.streamIds!.length)) return;
    const uploads = this.openUploads(message.streamIds!, method);
    if (method.authorize !== undefined) {
      this.authorizeThen(method, message, () => this.executeStreamCall(message, method, args, uploads), () => this.endUploads(uploads));
      return;
    }
    this.executeStreamCall(message, method, args, uploads);
  }

  /** Runs an authorized stream call with its open uploads. */
  private executeStreamCall(message: InvocationMessage, method: HubMethod, args: unknown[], uploads: UploadStream[]): void {
    const { target, invocationId } = message;
    const scope = new InvocationScope(this, ClientInvoke.Free);
    let result: unknown;
    const started = this.invocationStarted();
    try {
      result = this.endpoint.filters.invoke(this.endpoint.createHub(scope), method, this.withStreams(method, args, uploads), message.headers);
    } catch (error) {
      this.endUploads(uploads);
      this.invocationFailed(invocationId, method.name, target, error);
      this.invocationSettled(method.name, failureOutcome(error), started);
      return;
    }
    // Open uploads end before the Completion goes out, as .NET cleans up before writing it.
    if (isThenable(result)) {
      result.then(
        (value) => {
          this.endUploads(uploads);
          if (invocationId !== undefined) this.completeWithResult(invocationId, target, value);
          this.invocationSettled(method.name, 'success', started);
        },
        (error: unknown) => {
          this.endUploads(uploads);
          this.invocationFailed(invocationId, method.name, target, error);
          this.invocationSettled(method.name, failureOutcome(error), started);
        },
      );
      return;
    }
    this.endUploads(uploads);
    if (invocationId !== undefined) this.completeWithResult(invocationId, target, result);
    this.invocationSettled(method.name, 'success', started);
  }

  /**
   * A StreamInvocation: binding, then the invocation kind, stream count and id checks of .NET's dispatcher, then
   * the stream runs beside everything else (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0
   * Invoke, StreamAsync).
   */
  private receiveStreamInvocation(message: StreamInvocationMessage): void {
    const { target, invocationId } = message;
    const method = this.endpoint.methods.get(target.toLowerCase());
    if (method === undefined) {
      this.unknownMethod(message);
      return;
    }
    const args = this.bindArguments(message, method);
    if (args === null) return;
    if (!method.streaming) {
      this.reject(invocationId, InvocationErrors.nonStreamingMethodWithStreamInvocation(target));
      return;
    }
    if (!this.streamCountMatches(message, method)) return;
    const streams = (this.streams ??= new Map());
    if (streams.has(invocationId)) {
      // The running stream keeps its id (and stays cancellable); only the newcomer is refused.
      this.reject(invocationId, InvocationErrors.invocationIdInUse(invocationId));
      return;
    }
    const limit = this.endpoint.options.maximumStreamsPerConnection;
    if (limit !== null && streams.size >= limit) {
      this.reject(invocationId, InvocationErrors.tooManyStreams('server-to-client', limit));
      return;
    }
    if (!this.roomForUploads(invocationId, message.streamIds?.length ?? 0)) return;
    const uploads = message.streamIds === undefined || message.streamIds.length === 0
      ? undefined
      : this.openUploads(message.streamIds, method);
    if (method.authorize !== undefined) {
      this.authorizeThen(
        method,
        message,
        () => this.startStream(message, method, args, uploads),
        () => this.endUploads(uploads),
      );
      return;
    }
    this.startStream(message, method, args, uploads);
  }

  /** Starts an authorized server-to-client stream. */
  private startStream(
    message: StreamInvocationMessage,
    method: HubMethod,
    args: unknown[],
    uploads: UploadStream[] | undefined,
  ): void {
    const { target, invocationId } = message;
    const streams = (this.streams ??= new Map());
    // Checked again: while an asynchronous authorization ran, another stream may have taken the id.
    if (streams.has(invocationId)) {
      this.reject(invocationId, InvocationErrors.invocationIdInUse(invocationId));
      this.endUploads(uploads);
      return;
    }
    const stream = new ResultStream(
      this,
      invocationId,
      target,
      method.name,
      this.endpoint.options.enableDetailedErrors,
      uploads,
    );
    streams.set(invocationId, stream);
    const scope = new InvocationScope(this, ClientInvoke.Free, stream.signal);
    const fullArgs = uploads === undefined ? args : this.withStreams(method, args, uploads);
    stream.start(() => this.endpoint.filters.invoke(this.endpoint.createHub(scope), method, fullArgs, message.headers));
  }

  /**
   * The arguments the method gets, or `null` after answering a binding failure: a wrong count, or an argument its
   * schema rejects (.NET's `InvocationBindingFailureMessage`; detail only with detailed errors).
   */
  private bindArguments(message: InvocationMessage | StreamInvocationMessage, method: HubMethod): unknown[] | null {
    const detailed = this.endpoint.options.enableDetailedErrors;
    const args = message.arguments;
    let failure: string | undefined;
    if (args.length !== method.parameterCount) {
      failure = InvocationErrors.argumentCount(args.length, method.parameterCount);
    } else if (method.schemas !== undefined) {
      const bound: unknown[] = new Array(args.length);
      for (let i = 0; i < args.length; i++) {
        const outcome = checkValue(method.schemas[i], args[i]);
        if (!outcome.ok) {
          failure = InvocationErrors.bindingArguments;
          break;
        }
        bound[i] = outcome.value;
      }
      if (failure === undefined) return bound;
    }
    if (failure === undefined) return args;
    this.reject(
      message.invocationId,
      withErrorDetail(InvocationErrors.failedToInvoke(message.target), namedError('InvalidDataException', failure), detailed),
    );
    return null;
  }

  /**
   * Runs `run` when the hub's `static authorize` predicate lets the caller call `method`; otherwise answers .NET's
   * `Failed to invoke '<target>' because user is unauthorized`
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L333-L339) and runs `refused`.
   */
  private authorizeThen(
    method: HubMethod,
    message: InvocationMessage | StreamInvocationMessage,
    run: () => void,
    refused: () => void,
  ): void {
    const deny = () => {
      this.reject(message.invocationId, InvocationErrors.unauthorized(message.target));
      refused();
    };
    let verdict: boolean | PromiseLike<boolean>;
    try {
      verdict = method.authorize!(this);
    } catch (error) {
      this.logFailure(error, method.name, 'hub method authorization failed');
      deny();
      return;
    }
    if (!isThenable(verdict)) {
      if (verdict === true) run();
      else deny();
      return;
    }
    verdict.then(
      (allowed) => {
        if (this.phase === 'closed') refused();
        else if (allowed === true) run();
        else deny();
      },
      (error: unknown) => {
        this.logFailure(error, method.name, 'hub method authorization failed');
        deny();
      },
    );
  }

  /** Answers a stream-count mismatch (a HubException, so its detail always shows) and returns false. */
  private streamCountMatches(message: InvocationMessage | StreamInvocationMessage, method: HubMethod): boolean {
    const sent = message.streamIds?.length ?? 0;
    const expected = method.streamParameters?.length ?? 0;
    if (sent === expected) return true;
    this.reject(
      message.invocationId,
      withErrorDetail(
        InvocationErrors.unexpectedError(message.target),
        new HubException(InvocationErrors.streamCountMismatch(sent, expected)),
        this.endpoint.options.enableDetailedErrors,
      ),
    );
    return false;
  }

  private invocationFailed(invocationId: string | undefined, methodName: string, target: string, error: unknown): void {
    this.logFailure(error, methodName, 'hub method failed');
    this.complete(
      invocationId,
      withErrorDetail(InvocationErrors.unexpectedError(target), error, this.endpoint.options.enableDetailedErrors),
    );
  }

  /**
   * Logs a hub method's failure; a `HubException` is a message for the caller, not a server fault. One connection
   * gets {@link FAILURES_LOGGED_PER_WINDOW} lines with their stack traces per {@link FAILURE_WINDOW_MS}; further
   * failures in the window are counted and reported in one line when it ends, so a client whose calls fail by the
   * thousand (client results cancelled at its disconnect, say) cannot flood the log.
   */
  logFailure(error: unknown, methodName: string, message: string): void {
    if (error instanceof HubException) return;
    const window = (this.failureWindow ??= this.openFailureWindow());
    if (window.logged < FAILURES_LOGGED_PER_WINDOW) {
      window.logged++;
      this.endpoint.log.error(
        { event: 'signalr.invocation.failed', err: error, connectionId: this.connectionId, method: methodName },
        message,
      );
      return;
    }
    window.suppressed++;
    window.lastMethod = methodName;
    window.lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }

  private openFailureWindow(): FailureWindow {
    const window: FailureWindow = { logged: 0, suppressed: 0, lastMethod: '', lastError: '' };
    const timer = setTimeout(() => {
      this.failureWindow = null;
      if (window.suppressed === 0) return;
      this.endpoint.log.error(
        {
          event: 'signalr.invocation.failed',
          connectionId: this.connectionId,
          suppressed: window.suppressed,
          method: window.lastMethod,
          lastError: window.lastError,
        },
        `${window.suppressed} more hub method failure(s) of this connection were not logged one by one`,
      );
    }, FAILURE_WINDOW_MS);
    timer.unref();
    return window;
  }

  /** An invocation starts running: counted for a graceful shutdown, timed when metrics observe the hub. */
  private invocationStarted(): number {
    this.running++;
    return this.endpoint.stats.observer === null ? 0 : performance.now();
  }

  /** An invocation that ran has settled (its Completion, if any, is queued). */
  private invocationSettled(methodName: string, outcome: InvocationOutcome, started: number): void {
    this.running--;
    const observer = this.endpoint.stats.observer;
    if (observer !== null) observer.invocationEnded(methodName, outcome, (performance.now() - started) / 1000);
    if (this.drainAllowReconnect !== null) this.closeIfDrained();
  }

  /** Answers an invocation refused before its method ran (binding, authorization, invocation kind, ids). */
  private reject(invocationId: string | undefined, error: string): void {
    this.endpoint.stats.invocationsRejected++;
    this.complete(invocationId, error);
  }

  /** Frees an invocation slot; a loop waiting for one goes on. */
  releaseSlot(): void {
    this.activeInvocations--;
    this.wake();
  }

  /** Sends a Completion error, if the invocation expects an answer (non-blocking ones never get one). */
  private complete(invocationId: string | undefined, error: string): void {
    if (invocationId !== undefined) this.send({ type: MessageType.Completion, invocationId, error });
  }

  private completeWithResult(invocationId: string, target: string, result: unknown): void {
    let bytes: Buffer;
    try {
      // A void method's Completion still carries `result: null` (CompletionMessage.WithResult; docs/protocol.md §2.4).
      bytes = this.protocolInUse!.writeMessage({
        type: MessageType.Completion,
        invocationId,
        result: result === undefined ? null : result,
      });
    } catch (error) {
      this.endpoint.log.error(
        { event: 'signalr.invocation.failed', err: error, connectionId: this.connectionId, method: target },
        'result not serializable',
      );
      this.complete(
        invocationId,
        withErrorDetail(InvocationErrors.unexpectedError(target), error, this.endpoint.options.enableDetailedErrors),
      );
      return;
    }
    if (this.phase !== 'closed') this.deliver(bytes, true);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Streams (docs/protocol.md §2.9)

  /**
   * Opens the client-to-server streams of an invocation. A stream id already open is taken over by the new
   * stream, as .NET's stream tracker does (the old one then only ends with its method or the connection).
   */
  private openUploads(streamIds: readonly string[], method: HubMethod): UploadStream[] {
    const uploads = (this.uploads ??= new Map());
    const options = this.endpoint.options;
    const parameters = method.streamParameters!;
    const opened: UploadStream[] = new Array(streamIds.length);
    for (let i = 0; i < streamIds.length; i++) {
      const stream = new UploadStream(
        streamIds[i],
        options.streamBufferCapacity,
        parameters[i].itemSchema,
        options.enableDetailedErrors,
        (this.wakeCallback ??= () => this.wake()),
      );
      uploads.set(streamIds[i], stream);
      opened[i] = stream;
    }
    return opened;
  }

  /**
   * Whether `count` more client-to-server streams fit within `maximumStreamsPerConnection`; refuses the invocation
   * (a Completion with the error) when they do not.
   */
  private roomForUploads(invocationId: string | undefined, count: number): boolean {
    const limit = this.endpoint.options.maximumStreamsPerConnection;
    if (limit === null || count === 0 || (this.uploads?.size ?? 0) + count <= limit) return true;
    this.reject(invocationId, InvocationErrors.tooManyStreams('client-to-server', limit));
    return false;
  }

  /** The full parameter list: the bound arguments with the upload streams at their declared positions. */
  private withStreams(method: HubMethod, args: unknown[], uploads: readonly UploadStream[]): unknown[] {
    const parameters = method.streamParameters!;
    const all: unknown[] = new Array(args.length + uploads.length);
    let argument = 0;
    let stream = 0;
    for (let position = 0; position < all.length; position++) {
      if (stream < parameters.length && parameters[stream].position === position) all[position] = uploads[stream++];
      else all[position] = args[argument++];
    }
    return all;
  }

  /** Ends the uploads of an invocation that settled: the method reads no more (CleanupInvocation). */
  private endUploads(uploads: readonly UploadStream[] | undefined): void {
    if (uploads === undefined) return;
    for (const stream of uploads) {
      if (this.uploads?.get(stream.streamId) === stream) this.uploads.delete(stream.streamId);
      stream.complete();
    }
  }

  /** A StreamItem: to its upload stream, waiting while that stream is full; items of unknown streams are ignored. */
  private receiveStreamItem(message: StreamItemMessage): boolean {
    const stream = this.uploads?.get(message.invocationId);
    return stream === undefined || stream.offer(message.item);
  }

  /**
   * A Completion: first the end of an upload stream, then a client result; anything else is ignored
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L205-L221).
   */
  private receiveCompletion(message: CompletionMessage): void {
    const stream = this.uploads?.get(message.invocationId);
    if (stream !== undefined) {
      this.uploads!.delete(message.invocationId);
      stream.completeFromClient(message.error);
      return;
    }
    try {
      this.endpoint.lifetime.setConnectionResult(this.connectionId, message);
    } catch (error) {
      // An answer to a question asked of another connection: .NET lets the InvalidOperationException end the
      // connection that sent it, and the question stays open for the connection it was asked of.
      this.endpoint.log.warn({ err: error, connectionId: this.connectionId }, 'completion for another connection');
      this.closeWithError(error);
    }
  }

  /** Bytes queued for the client in this event-loop turn. */
  get outboundBacklog(): number {
    return this.http.bufferedOutbound;
  }

  /** Writes one item of a server-to-client stream; throws when the item cannot be serialized. */
  writeStreamItem(message: StreamItemMessage): void {
    if (this.protocolInUse === null || this.phase === 'closed') return;
    this.deliver(this.protocolInUse.writeMessage(message), true);
  }

  /** A server-to-client stream is over: forget it, end its uploads, and send its Completion. */
  streamEnded(stream: ResultStream, error: string | undefined): void {
    if (this.streams?.get(stream.invocationId) === stream) this.streams.delete(stream.invocationId);
    this.endUploads(stream.uploads);
    // A stream's Completion has neither result nor, unless it failed, error (docs/protocol.md §2.4).
    this.send(
      error === undefined
        ? { type: MessageType.Completion, invocationId: stream.invocationId }
        : { type: MessageType.Completion, invocationId: stream.invocationId, error },
    );
    if (this.drainAllowReconnect !== null) this.closeIfDrained();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Handshake and start

  private receiveHandshake(chunk: Buffer): void {
    let handshake;
    try {
      handshake = this.handshake!.push(chunk);
    } catch {
      this.failHandshake(HandshakeErrors.canceled);
      return;
    }
    if (handshake === null) return;
    this.handshake = null;
    const detailed = this.endpoint.options.enableDetailedErrors;
    let request;
    try {
      request = parseHandshakeRequest(handshake.record);
    } catch (error) {
      this.failHandshake(withErrorDetail(HandshakeErrors.unexpected, error, detailed));
      return;
    }
    const requested = request.protocol.toLowerCase();
    const protocol = this.endpoint.options.protocols.find((candidate) => candidate.name.toLowerCase() === requested);
    if (protocol === undefined) {
      this.failHandshake(HandshakeErrors.protocolNotSupported(request.protocol));
      return;
    }
    if (!protocol.isVersionSupported(request.version)) {
      this.failHandshake(HandshakeErrors.versionNotSupported(request.version, protocol.name));
      return;
    }
    if (protocol.transferFormat === 'Binary' && this.http.transport === 'ServerSentEvents') {
      this.failHandshake(HandshakeErrors.transferFormatNotSupported(protocol.name, protocol.transferFormat));
      return;
    }
    this.protocolInUse = protocol;
    this.reader = protocol.createReader({ maximumMessageSize: this.endpoint.options.maximumReceiveMessageSize });
    // Stateful reconnect needs both: negotiate granted it and the client speaks protocol version 2
    // (src/SignalR/server/Core/src/HubConnectionContext.cs@v10.0.0 L587-L601); a version-1 client turns it off for this
    // connection.
    if (this.http.statefulReconnectNegotiated && request.version >= 2 && this.http.transport === 'WebSockets') {
      this.messageBuffer = new MessageBuffer();
      this.http.reconnectable = true;
    }
    // The format switches before the reply, so a binary protocol's `{}` goes out in a Binary frame
    // (docs/protocol.md §1.5).
    this.http.transferFormat = protocol.transferFormat;
    this.http.write(HANDSHAKE_SUCCESS);
    this.lastPingAt = Date.now();
    this.phase = 'starting';
    this.hold(handshake.rest);
    void this.start();
  }

  private failHandshake(error: string): void {
    this.endpoint.stats.handshakesFailed++;
    this.endpoint.log.info(
      { event: 'signalr.handshake.failed', connectionId: this.connectionId, transport: this.transport, error },
      'handshake failed',
    );
    // Handshake errors go out as text and end the connection without a Close message
    // (src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L140-L143).
    this.http.write(writeHandshakeError(error));
    this.finish(undefined);
    this.http.close();
  }

  /** Registers the connection for routing, runs `onConnected`, then opens the message loop. */
  private async start(): Promise<void> {
    try {
      await this.endpoint.lifetime.onConnected(this);
      this.registered = true;
      if (this.phase === 'closed') return;
      // Client results are refused in onConnected, as in .NET (DefaultHubDispatcher: invokeAllowed: false).
      const scope = new InvocationScope(this, ClientInvoke.Refused);
      await this.endpoint.filters.onConnected(this.endpoint.createHub(scope));
    } catch (error) {
      this.endpoint.log.error(
        { event: 'signalr.connection.error', err: error, connectionId: this.connectionId },
        'onConnected failed',
      );
      // .NET: a Close with the error and no allowReconnect; onDisconnected is not run
      // (src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L165-L176).
      this.close(
        {
          type: MessageType.Close,
          error: withErrorDetail(CLOSE_WITH_ERROR, error, this.endpoint.options.enableDetailedErrors),
        },
        error instanceof Error ? error : undefined,
      );
      return;
    }
    if (this.phase !== 'starting') return;
    this.phase = 'connected';
    this.hubConnected = true;
    this.endpoint.log.info(
      {
        event: 'signalr.connection.started',
        connectionId: this.connectionId,
        transport: this.transport,
        protocol: this.protocol,
      },
      'connection started',
    );
    this.pump();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Keep-alive and timeouts

  onHeartbeat(now: number): void {
    const options = this.endpoint.options;
    if (this.phase === 'handshake') {
      if (now - this.startedAt >= options.handshakeTimeoutMs) {
        this.endStatus = 'timeout';
        this.failHandshake(HandshakeErrors.canceled);
      }
      return;
    }
    if (this.phase === 'closed') return;
    // While a stateful-reconnect connection has no transport, only the disconnect timeout runs.
    if (!this.http.hasTransport) return;
    // Not while the loop waits: it reads nothing then, and .NET pauses this timer during a dispatch.
    if (this.clientTimeoutArmed && !this.blocked && now - this.lastReceiveAt >= options.clientTimeoutIntervalMs) {
      const error = new Error(
        `Client hasn't sent a message/ping within the configured ClientTimeoutInterval.`,
      );
      error.name = 'OperationCanceledException';
      this.endStatus = 'timeout';
      this.closeWithError(error);
      return;
    }
    // Expired authentication: a Close without error that lets the client reconnect with a fresh token, as .NET's
    // heartbeat requests (HttpConnectionManager, `CloseOnAuthenticationExpiration`; docs/protocol.md §2.8).
    if (now > this.authenticationExpiresAt) {
      this.endpoint.log.info(
        { event: 'signalr.connection.authentication_expired', connectionId: this.connectionId },
        'authentication expired; closing the connection',
      );
      this.close({ type: MessageType.Close, allowReconnect: true });
      return;
    }
    // Long polling has inherent keep-alive: no pings there
    // (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L606-L608).
    if (this.http.transport !== 'LongPolling' && now - this.lastPingAt >= options.keepAliveIntervalMs) {
      this.lastPingAt = now;
      this.http.write(this.endpoint.pingBytes(this.protocolInUse!));
    }
    // Stateful reconnect: acknowledge what arrived, at most once a second
    // (src/SignalR/common/Shared/MessageBuffer.cs@v10.0.0 L88-L120).
    const ack = this.messageBuffer?.ackDue(now);
    if (ack !== undefined) this.http.write(this.protocolInUse!.writeMessage({ type: MessageType.Ack, sequenceId: ack }));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Stateful reconnect (docs/protocol.md §2.10)

  onTransportLost(): void {
    this.endpoint.log.debug({ connectionId: this.connectionId }, 'transport lost; waiting for the client to reconnect');
  }

  /**
   * A reconnecting WebSocket took over: the client resends everything we did not acknowledge, starting with its
   * Sequence, so what was received but not yet handled is dropped (a partial message of the dead socket included);
   * we send our Sequence and replay every message the client did not acknowledge. No new handshake, no
   * `onDisconnected`/`onConnected` in between.
   */
  onTransportResumed(): void {
    const buffer = this.messageBuffer;
    const protocol = this.protocolInUse;
    if (buffer === null || protocol === null || this.phase !== 'connected') return;
    this.reader = protocol.createReader({ maximumMessageSize: this.endpoint.options.maximumReceiveMessageSize });
    this.inbox.length = 0;
    this.inboxHead = 0;
    this.heldInput = [];
    this.heldInputBytes = 0;
    this.inputPaused = false;
    this.inputFailed = false;
    this.waitingMethod = null;
    this.waitingArgs = null;
    this.blocked = false;
    this.lastReceiveAt = Date.now();
    this.http.write(protocol.writeMessage({ type: MessageType.Sequence, sequenceId: buffer.replayStartId }));
    for (const bytes of buffer.unacknowledged()) this.http.write(bytes);
    this.endpoint.log.debug({ connectionId: this.connectionId }, 'client reconnected; unacknowledged messages replayed');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Closing

  /** Closes because the connection failed (invalid data, timeout): the client may reconnect (docs/protocol.md §2.8). */
  private closeWithError(error: unknown): void {
    this.close(
      {
        type: MessageType.Close,
        error: withErrorDetail(CLOSE_WITH_ERROR, error, this.endpoint.options.enableDetailedErrors),
        allowReconnect: true,
      },
      error instanceof Error ? error : undefined,
    );
  }

  /** The server shuts down: a Close (allowing reconnect when asked) now, whatever runs. */
  shutdown(allowReconnect: boolean): void {
    this.endStatus = 'app_shutdown';
    this.close(allowReconnect ? { type: MessageType.Close, allowReconnect: true } : { type: MessageType.Close });
  }

  /**
   * A graceful shutdown: the connection is closed as {@link shutdown} does once no invocation or stream runs — at
   * once when idle. Messages keep being handled meanwhile, so invocations in flight complete normally.
   */
  closeWhenIdle(allowReconnect: boolean): void {
    if (this.phase === 'closed') return;
    this.drainAllowReconnect = allowReconnect;
    if (this.phase !== 'connected') this.shutdown(allowReconnect);
    else this.closeIfDrained();
  }

  private closeIfDrained(): void {
    if (this.running > 0 || (this.streams !== null && this.streams.size > 0)) return;
    this.shutdown(this.drainAllowReconnect === true);
  }

  /** Sends `message` and ends the connection; `error` is what `onDisconnected` receives. */
  close(message: CloseMessage, error?: Error): void {
    if (this.phase === 'closed') return;
    const protocol = this.protocolInUse;
    if (protocol !== null) this.http.write(protocol.writeMessage(message));
    this.finish(error);
    this.http.close();
  }

  onTransportClosed(error?: Error): void {
    this.finish(error);
  }

  /** Runs once when the connection ends, however it ends. */
  private finish(error: Error | undefined): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.heldInput = [];
    this.heldInputBytes = 0;
    this.inbox.length = 0;
    this.inboxHead = 0;
    this.waitingMethod = null;
    this.waitingArgs = null;
    this.abortController?.abort();
    // Streams stop with the connection: producers see their signal abort, upload readers an
    // OperationCanceledException (HubConnectionContext: StreamTracker.CompleteAll).
    if (this.streams !== null) {
      for (const stream of this.streams.values()) stream.connectionClosed();
      this.streams = null;
    }
    if (this.uploads !== null) {
      for (const stream of this.uploads.values()) stream.connectionClosed();
      this.uploads = null;
    }
    this.endpoint.connectionEnded(this);
    this.reportEnd(error);
    void this.runDisconnected(error);
  }

  /** The connection's end in metrics and the log. */
  private reportEnd(error: Error | undefined): void {
    const status = this.http.expired ? 'timeout' : this.endStatus;
    const durationMs = Date.now() - this.startedAt;
    const observer = this.endpoint.stats.observer;
    if (observer !== null) observer.connectionEnded(this.transport, status, durationMs / 1000);
    this.endpoint.log.info(
      {
        event: 'signalr.connection.ended',
        connectionId: this.connectionId,
        transport: this.transport,
        protocol: this.protocol,
        status,
        durationMs,
        ...(error !== undefined && { err: error }),
      },
      'connection ended',
    );
  }

  private async runDisconnected(error: Error | undefined): Promise<void> {
    // Order as .NET: the hub's onDisconnected while the connection still has its groups, then the lifetime
    // manager forgets it (src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L140-L261).
    if (this.hubConnected) {
      try {
        const scope = new InvocationScope(this, ClientInvoke.Free);
        await this.endpoint.filters.onDisconnected(this.endpoint.createHub(scope), error);
      } catch (hookError) {
        this.endpoint.log.error(
          { event: 'signalr.connection.error', err: hookError, connectionId: this.connectionId },
          'onDisconnected failed',
        );
      }
    }
    if (this.registered) {
      try {
        await this.endpoint.lifetime.onDisconnected(this);
      } catch (lifetimeError) {
        this.endpoint.log.error(
          { event: 'signalr.connection.error', err: lifetimeError, connectionId: this.connectionId },
          'lifetime manager failed',
        );
      }
    }
    this.endpoint.log.debug({ connectionId: this.connectionId }, 'hub connection ended');
  }
}
