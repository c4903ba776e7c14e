// Over 600 lines: one state machine over `phase` for a connection's whole life; loop, dispatch, streams live apart.
/**
 * One hub connection from handshake to close — ASP.NET Core's `HubConnectionContext`: the handshake, writes to the
 * client (sequenced for stateful reconnect, bounded for slow clients), keep-alive and timeouts, graceful drain and
 * Close, and the hub lifecycle (`onConnected`, `onDisconnected`).
 *
 * State this object owns: the chosen protocol, keep-alive timestamps, `items`, the connection's abort signal, the
 * replay buffer, and what a graceful shutdown waits for. It delegates the rest along .NET's seams: the read loop
 * (parsing, ordered dispatch, invocation slots, pausing input) to its {@link InboundLoop}; methods, binding and
 * invoking to its hub's {@link HubMessageDispatcher}; open streams to its {@link StreamTracker}. Routing state (groups,
 * users) belongs to the lifetime manager; bytes on the wire belong to the transport.
 */
import {
  HANDSHAKE_SUCCESS,
  HandshakeErrors,
  HandshakeReader,
  parseHandshakeRequest,
  writeHandshakeError,
} from '../../protocol/handshake';
import type { HubProtocol } from '../../protocol/hub-protocol';
import { MessageType, type CloseMessage, type HubMessage, type StreamItemMessage } from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';
import type { ConnectionApplication, HttpConnection } from '../connections/http-connection';
import { CLOSE_WITH_ERROR, ConnectionErrors, HubException, namedError, withErrorDetail } from '../shared/errors';
import type { HeartbeatParticipant } from '../shared/heartbeat';
import { logEvent, type Logger } from '../shared/log-events';
import type { HubLifetimeManager, ManagedConnection } from '../lifetime/hub-lifetime-manager';
import type { SerializedHubMessage } from '../lifetime/serialized-message';
import type { ResolvedHubOptions } from './hub-options';
import type { GroupManager, HubCallerClients, HubHttpRequest } from './hub';
import { CallerHubClients, GuardedHubClients, type ClientInvokeGuard } from './hub-clients';
import type { BoundInvocation, DispatchedConnection } from './dispatched-connection';
import type { HubMessageDispatcher } from './hub-dispatcher';
import type { ConnectionEndStatus, HubStats, InvocationOutcome } from './hub-stats';
import { InboundLoop, type InboundSink } from './inbound-loop';
import type { ResultStream } from './result-stream';
import { MessageBuffer } from './message-buffer';
import { FailureLogWindow } from './failure-log';
import { StreamTracker } from './stream-tracker';

/**
 * What a connection needs of the hub path it belongs to (the endpoint), and nothing more: its options, log,
 * counters, lifetime manager and dispatcher.
 */
export interface HubConnectionHost {
  readonly options: ResolvedHubOptions;
  readonly log: Logger;
  /** Counters for metrics. */
  readonly stats: HubStats;
  readonly lifetime: HubLifetimeManager;
  readonly groups: GroupManager;
  readonly dispatcher: HubMessageDispatcher;
  /** The framed Ping of a protocol, serialized once. */
  pingBytes(protocol: HubProtocol): Buffer;
  /** The connection ended: forget it. */
  connectionEnded(connection: HubConnectionContext): void;
}

type Phase = 'handshake' | 'starting' | 'connected' | 'closed';

/** A connection of one hub, from handshake to close. */
export class HubConnectionContext
  implements ConnectionApplication, ManagedConnection, HeartbeatParticipant, DispatchedConnection, InboundSink
{
  readonly connectionId: string;
  // `items` and the abort signal are made on first use: most connections never read them, and together they are
  // about 0.5 KB of every idle connection (an AbortSignal is an EventTarget with its own listener map).
  private itemsMap: Map<unknown, unknown> | null = null;
  private abortController: AbortController | null = null;
  readonly user: unknown;

  private phase: Phase = 'handshake';
  private protocolInUse: HubProtocol | null = null;
  private handshake: HandshakeReader | null;
  private sharedClients: CallerHubClients | undefined;

  /**
   * When the connection's authentication expires (ms since the epoch), with `closeOnAuthenticationExpiration`;
   * checked on every heartbeat tick.
   */
  authenticationExpiresAt = Infinity;

  // Keep-alive (docs/protocol.md §2.8): pings every keepAliveInterval; the client timeout runs once the client pinged.
  /** When the transport started the connection (ms since the epoch). */
  readonly startedAt: number;
  private lastPingAt = 0;
  private lastReceiveAt: number;
  private clientTimeoutArmed = false;

  /** The read loop: parsing, ordered dispatch, invocation slots, pausing input. */
  private readonly loop: InboundLoop;
  /** The bound Invocation at the head of the loop while it waits for a slot (see {@link HubMessageDispatcher}). */
  waitingInvocation: BoundInvocation | null = null;

  /** Hub method failures of this connection in the current log window; `null` between windows. */
  private failureWindow: FailureLogWindow | null = null;
  /** Streams of both directions (docs/protocol.md §2.9), made on first use: most connections never stream. */
  private streamTracker: StreamTracker | null = null;

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
    private readonly host: HubConnectionHost,
    readonly httpRequest: HubHttpRequest,
    readonly userIdentifier: string | undefined,
    now: number,
  ) {
    this.connectionId = http.connectionId;
    this.user = httpRequest.user;
    this.startedAt = now;
    this.lastReceiveAt = now;
    this.handshake = new HandshakeReader(host.options.maximumReceiveMessageSize);
    this.loop = new InboundLoop(this, host.options.maximumParallelInvocationsPerClient, host.stats);
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
    return (this.sharedClients ??= new CallerHubClients(this.host.lifetime, this.connectionId));
  }

  /** The connection's clients with `invoke` consulting `guard` first. */
  guardedClients(guard: ClientInvokeGuard): HubCallerClients {
    return new GuardedHubClients(this.hubClients, guard);
  }

  get groups(): GroupManager {
    return this.host.groups;
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
      logEvent(
        this.host.log,
        'error',
        'signalr.connection.error',
        { err: error, connectionId: this.connectionId },
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
    const stats = this.host.stats;
    stats.messagesSent++;
    if (stats.tracer !== null) stats.tracer.outbound(this, this.protocolInUse!, bytes);
    if (sequenced && this.messageBuffer !== null) this.messageBuffer.recordSent(bytes);
    this.http.write(bytes);
    const limit = this.host.options.maximumBufferedOutboundBytes;
    if (limit === null) return;
    const waiting = Math.max(this.http.pendingOutbound, this.messageBuffer?.bufferedBytes ?? 0);
    if (waiting > limit) this.closeSlowClient(waiting, limit);
  }

  /**
   * A client that does not read what it is sent: rather than let its messages grow server memory, the connection is
   * closed (the Close message is queued behind the rest; the transport cuts the socket if it does not drain).
   */
  private closeSlowClient(waiting: number, limit: number): void {
    logEvent(
      this.host.log,
      'warn',
      'signalr.connection.slow_client',
      { connectionId: this.connectionId, waiting, limit },
      'client too slow: connection closed',
    );
    this.closeWithError(namedError('SlowClientException', ConnectionErrors.slowClient(waiting, limit)));
  }

  /** Sends a Completion with an error (a refused or failed invocation). */
  sendCompletionError(invocationId: string, error: string): void {
    this.send({ type: MessageType.Completion, invocationId, error });
  }

  /** Sends a Completion with a result; returns the serialization failure (logged) instead of throwing it. */
  sendCompletionResult(invocationId: string, target: string, result: unknown): unknown {
    let bytes: Buffer;
    try {
      // A void method's Completion still carries `result: null` (CompletionMessage.WithResult; docs/protocol.md §2.4).
      bytes = this.protocolInUse!.writeMessage({
        type: MessageType.Completion,
        invocationId,
        result: result === undefined ? null : result,
      });
    } catch (error) {
      logEvent(
        this.host.log,
        'error',
        'signalr.invocation.failed',
        { err: error, connectionId: this.connectionId, method: target },
        'result not serializable',
      );
      return error;
    }
    if (this.phase !== 'closed') this.deliver(bytes, true);
    return undefined;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Input: the loop's sink

  onReceive(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastReceiveAt = Date.now();
    if (this.phase === 'handshake') this.receiveHandshake(chunk);
    else this.loop.receive(chunk);
  }

  get accepting(): boolean {
    return this.phase === 'connected';
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Dispatches one message; with stateful reconnect, a message replayed after a reconnect that was handled before is skipped. */
  dispatch(message: HubMessage): boolean {
    const buffer = this.messageBuffer;
    const dispatcher = this.host.dispatcher;
    // An Invocation waiting for a slot is dispatched again when one frees: traced the first time only.
    const tracer = this.host.stats.tracer;
    if (tracer !== null && this.waitingInvocation === null) tracer.inbound(this, message);
    if (buffer === null || message.type > MessageType.CancelInvocation) return dispatcher.dispatch(this, message);
    if (buffer.isDuplicate()) {
      buffer.received();
      return true;
    }
    const handled = dispatcher.dispatch(this, message);
    if (handled) buffer.received();
    return handled;
  }

  invalidInput(error: unknown): void {
    this.host.log.debug({ err: error, connectionId: this.connectionId }, 'invalid hub message');
    this.closeWithError(error);
  }

  loopFailed(error: unknown): void {
    // Hub code runs inside its own guards; this is a fault of ours. It ends this connection, not the process
    // (the transport's event handler would otherwise see it).
    logEvent(
      this.host.log,
      'error',
      'signalr.connection.error',
      { err: error, connectionId: this.connectionId },
      'hub message loop failed',
    );
    this.closeWithError(error);
  }

  pauseInput(): void {
    this.http.pauseInput();
  }

  resumeInput(): void {
    this.http.resumeInput();
  }

  resumedAfterWait(): void {
    // .NET stops the client timeout while a message is being dispatched.
    this.lastReceiveAt = Date.now();
  }

  // ------------------------------------------------------------------------------------------------------------
  // What the dispatcher uses

  get streams(): StreamTracker {
    return (this.streamTracker ??= new StreamTracker(this.host.options, () => this.loop.wake()));
  }

  get openStreams(): StreamTracker | null {
    return this.streamTracker;
  }

  takeSlot(): boolean {
    return this.loop.takeSlot();
  }

  /** Frees an invocation slot; a loop waiting for one goes on. */
  releaseSlot(): void {
    this.loop.releaseSlot();
  }

  clientPinged(): void {
    this.clientTimeoutArmed = true;
  }

  acknowledge(sequenceId: number): void {
    this.messageBuffer?.acknowledge(sequenceId);
  }

  resetSequence(sequenceId: number): void {
    if (this.messageBuffer !== null && !this.messageBuffer.resetSequence(sequenceId)) {
      this.closeWithError(namedError('InvalidOperationException', ConnectionErrors.sequenceIdTooLarge));
    }
  }

  /** An invocation starts running: counted for a graceful shutdown, timed when metrics observe the hub. */
  invocationStarted(): number {
    this.running++;
    return this.host.stats.observer === null ? 0 : performance.now();
  }

  /** An invocation that ran has settled (its Completion, if any, is queued). */
  invocationSettled(methodName: string, outcome: InvocationOutcome, started: number): void {
    this.running--;
    const observer = this.host.stats.observer;
    if (observer !== null) observer.invocationEnded(methodName, outcome, (performance.now() - started) / 1000);
    if (this.drainAllowReconnect !== null) this.closeIfDrained();
  }

  /**
   * Logs a hub method's failure; a `HubException` is a message for the caller, not a server fault. Rate-limited
   * per connection (see {@link FailureLogWindow}).
   */
  logFailure(error: unknown, methodName: string, message: string): void {
    if (error instanceof HubException) return;
    const window = (this.failureWindow ??= new FailureLogWindow(this.host.log, this.connectionId, () => {
      this.failureWindow = null;
    }));
    window.record(error, methodName, message);
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
    const streams = this.streams;
    streams.resultEnded(stream);
    streams.endUploads(stream.uploads);
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
    const detailed = this.host.options.enableDetailedErrors;
    let request;
    try {
      request = parseHandshakeRequest(handshake.record);
    } catch (error) {
      this.failHandshake(withErrorDetail(HandshakeErrors.unexpected, error, detailed));
      return;
    }
    const requested = request.protocol.toLowerCase();
    const protocol = this.host.options.protocols.find((candidate) => candidate.name.toLowerCase() === requested);
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
    this.loop.reset(protocol.createReader({ maximumMessageSize: this.host.options.maximumReceiveMessageSize }));
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
    // Held by the loop until the hub's `onConnected` has run.
    this.loop.receive(handshake.rest);
    void this.start();
  }

  private failHandshake(error: string): void {
    this.host.stats.handshakesFailed++;
    logEvent(
      this.host.log,
      'info',
      'signalr.handshake.failed',
      { connectionId: this.connectionId, transport: this.transport, error },
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
      await this.host.lifetime.onConnected(this);
      this.registered = true;
      if (this.phase === 'closed') return;
      await this.host.dispatcher.onConnected(this);
    } catch (error) {
      logEvent(
        this.host.log,
        'error',
        'signalr.connection.error',
        { err: error, connectionId: this.connectionId },
        'onConnected failed',
      );
      // .NET: a Close with the error and no allowReconnect; onDisconnected is not run
      // (src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L165-L176).
      this.close(
        {
          type: MessageType.Close,
          error: withErrorDetail(CLOSE_WITH_ERROR, error, this.host.options.enableDetailedErrors),
        },
        error instanceof Error ? error : undefined,
      );
      return;
    }
    if (this.phase !== 'starting') return;
    this.phase = 'connected';
    this.hubConnected = true;
    logEvent(
      this.host.log,
      'info',
      'signalr.connection.started',
      {
        connectionId: this.connectionId,
        transport: this.transport,
        protocol: this.protocol,
      },
      'connection started',
    );
    this.loop.pump();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Keep-alive and timeouts

  onHeartbeat(now: number): void {
    const options = this.host.options;
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
    if (this.clientTimeoutArmed && !this.loop.waiting && now - this.lastReceiveAt >= options.clientTimeoutIntervalMs) {
      this.endStatus = 'timeout';
      this.closeWithError(namedError('OperationCanceledException', ConnectionErrors.clientTimeout));
      return;
    }
    // Expired authentication: a Close without error that lets the client reconnect with a fresh token, as .NET's
    // heartbeat requests (HttpConnectionManager, `CloseOnAuthenticationExpiration`; docs/protocol.md §2.8).
    if (now > this.authenticationExpiresAt) {
      logEvent(
        this.host.log,
        'info',
        'signalr.connection.authentication_expired',
        { connectionId: this.connectionId },
        'authentication expired; closing the connection',
      );
      this.close({ type: MessageType.Close, allowReconnect: true });
      return;
    }
    // Long polling has inherent keep-alive: no pings there
    // (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L606-L608).
    if (this.http.transport !== 'LongPolling' && now - this.lastPingAt >= options.keepAliveIntervalMs) {
      this.lastPingAt = now;
      this.http.write(this.host.pingBytes(this.protocolInUse!));
    }
    // Stateful reconnect: acknowledge what arrived, at most once a second
    // (src/SignalR/common/Shared/MessageBuffer.cs@v10.0.0 L88-L120).
    const ack = this.messageBuffer?.ackDue(now);
    if (ack !== undefined)
      this.http.write(this.protocolInUse!.writeMessage({ type: MessageType.Ack, sequenceId: ack }));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Stateful reconnect (docs/protocol.md §2.10)

  onTransportLost(): void {
    this.host.log.debug({ connectionId: this.connectionId }, 'transport lost; waiting for the client to reconnect');
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
    this.loop.reset(protocol.createReader({ maximumMessageSize: this.host.options.maximumReceiveMessageSize }));
    this.waitingInvocation = null;
    this.lastReceiveAt = Date.now();
    this.http.write(protocol.writeMessage({ type: MessageType.Sequence, sequenceId: buffer.replayStartId }));
    for (const bytes of buffer.unacknowledged()) this.http.write(bytes);
    this.host.log.debug({ connectionId: this.connectionId }, 'client reconnected; unacknowledged messages replayed');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Closing

  /** Closes because the connection failed (invalid data, timeout): the client may reconnect (docs/protocol.md §2.8). */
  closeWithError(error: unknown): void {
    this.close(
      {
        type: MessageType.Close,
        error: withErrorDetail(CLOSE_WITH_ERROR, error, this.host.options.enableDetailedErrors),
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
    if (this.running > 0 || (this.streamTracker !== null && this.streamTracker.resultCount > 0)) return;
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
    this.loop.clear();
    this.waitingInvocation = null;
    this.abortController?.abort();
    // Streams stop with the connection (StreamTracker.CompleteAll).
    this.streamTracker?.closeAll();
    this.host.connectionEnded(this);
    this.reportEnd(error);
    void this.runDisconnected(error);
  }

  /** The connection's end in metrics and the log. */
  private reportEnd(error: Error | undefined): void {
    const status = this.http.expired ? 'timeout' : this.endStatus;
    const durationMs = Date.now() - this.startedAt;
    const observer = this.host.stats.observer;
    if (observer !== null) observer.connectionEnded(this.transport, status, durationMs / 1000);
    logEvent(
      this.host.log,
      'info',
      'signalr.connection.ended',
      {
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
        await this.host.dispatcher.onDisconnected(this, error);
      } catch (hookError) {
        logEvent(
          this.host.log,
          'error',
          'signalr.connection.error',
          { err: hookError, connectionId: this.connectionId },
          'onDisconnected failed',
        );
      }
    }
    if (this.registered) {
      try {
        await this.host.lifetime.onDisconnected(this);
      } catch (lifetimeError) {
        logEvent(
          this.host.log,
          'error',
          'signalr.connection.error',
          { err: lifetimeError, connectionId: this.connectionId },
          'lifetime manager failed',
        );
      }
    }
    this.host.log.debug({ connectionId: this.connectionId }, 'hub connection ended');
  }
}
