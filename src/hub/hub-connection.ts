/**
 * One hub connection: the handshake, the inbound message loop, keep-alive, invocation dispatch and Close, as
 * ASP.NET Core's `HubConnectionContext` + `HubConnectionHandler` + `DefaultHubDispatcher` do it.
 *
 * State this object owns: the chosen protocol and its reader, the inbound queue and the invocation slots
 * (`maximumParallelInvocationsPerClient`), keep-alive timestamps, `items`, and the connection's abort signal.
 * Routing state (groups, users) belongs to the lifetime manager; bytes on the wire belong to the transport.
 */
import type { FastifyRequest } from 'fastify';
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
} from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';
import type { ConnectionApplication, HttpConnection } from '../connections/http-connection';
import { CLOSE_WITH_ERROR, HubException, InvocationErrors, withErrorDetail } from '../errors';
import type { HeartbeatParticipant } from '../heartbeat';
import type { ManagedConnection } from '../lifetime/hub-lifetime-manager';
import type { SerializedHubMessage } from '../lifetime/serialized-message';
import type { HubBinding, HubCallerContext } from './hub';
import { CallerHubClients } from './hub-clients';
import type { HubEndpoint } from './hub-endpoint';
import type { HubMethod } from './hub-methods';

/**
 * Raw bytes held while the message loop waits (for `onConnected`, or for an invocation slot) before the transport is
 * asked to stop reading: ASP.NET Core's pipe pause threshold (`ApplicationMaxBufferSize`, 64 KiB).
 */
const HELD_INPUT_PAUSE_BYTES = 64 * 1024;

/** An error with a .NET exception type name, for the detail of binding failures. */
function invalidData(message: string): Error {
  const error = new Error(message);
  error.name = 'InvalidDataException';
  return error;
}

type Phase = 'handshake' | 'starting' | 'connected' | 'closed';

/** A connection of one hub, from handshake to close. */
export class HubConnection implements ConnectionApplication, ManagedConnection, HeartbeatParticipant, HubCallerContext {
  readonly connectionId: string;
  readonly items = new Map<unknown, unknown>();
  readonly user: unknown;

  private phase: Phase = 'handshake';
  private protocolInUse: HubProtocol | null = null;
  private reader: HubMessageReader | null = null;
  private handshake: HandshakeReader | null;
  private readonly abortController = new AbortController();
  private binding: HubBinding | undefined;

  // Keep-alive (spec §2.8): pings every keepAliveInterval; the client timeout runs once the client pinged.
  private readonly startedAt: number;
  private lastPingAt = 0;
  private lastReceiveAt: number;
  private clientTimeoutArmed = false;

  // The message loop: parsed messages waiting for a slot, and raw input held meanwhile.
  private readonly inbox: HubMessage[] = [];
  private inboxHead = 0;
  private heldInput: Buffer[] = [];
  private heldInputBytes = 0;
  private inputPaused = false;
  private waiting = true;
  private activeInvocations = 0;

  private hubConnected = false;
  private registered = false;

  constructor(
    readonly http: HttpConnection,
    private readonly endpoint: HubEndpoint,
    readonly httpRequest: FastifyRequest,
    readonly userIdentifier: string | undefined,
    now: number,
  ) {
    this.connectionId = http.connectionId;
    this.user = (httpRequest as { user?: unknown }).user;
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

  get connectionAborted(): AbortSignal {
    return this.abortController.signal;
  }

  /** The services hub instances of this connection are bound to. */
  get hubBinding(): HubBinding {
    return (this.binding ??= {
      clients: new CallerHubClients(this.endpoint.lifetime, this.connectionId),
      groups: this.endpoint.groups,
      context: this,
    });
  }

  abort(): void {
    // Context.Abort(): a Close without error and without allowReconnect (HubHandler@v10 L200-L261).
    this.close({ type: MessageType.Close });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Writing

  /** Writes a message serialized once for every recipient (lifetime-manager sends). */
  write(message: SerializedHubMessage): void {
    const protocol = this.protocolInUse;
    if (protocol === null || this.phase === 'closed') return;
    let bytes: Buffer;
    try {
      bytes = message.getBytes(protocol);
    } catch (error) {
      this.endpoint.log.error({ err: error, connectionId: this.connectionId }, 'hub message could not be serialized');
      this.closeWithError(error);
      return;
    }
    this.http.write(bytes);
  }

  /** Writes one message for this connection only. */
  private send(message: HubMessage): void {
    if (this.protocolInUse === null || this.phase === 'closed') return;
    this.http.write(this.protocolInUse.writeMessage(message));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Input

  onReceive(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastReceiveAt = Date.now();
    if (this.phase === 'handshake') {
      this.receiveHandshake(chunk);
      return;
    }
    if (this.waiting) {
      this.hold(chunk);
      return;
    }
    this.parse(chunk);
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
    this.inbox.push(message);
  };

  private parse(chunk: Uint8Array): void {
    try {
      this.reader!.push(chunk, this.enqueue);
    } catch (error) {
      // Messages before the invalid one are still dispatched, as .NET handles each before parsing the next.
      this.drainInbox();
      this.endpoint.log.debug({ err: error, connectionId: this.connectionId }, 'invalid hub message');
      this.closeWithError(error);
      return;
    }
    if (this.inbox.length > this.inboxHead) this.drainInbox();
  }

  /** Processes queued messages in order until one must wait for an invocation slot. */
  private drainInbox(): void {
    const inbox = this.inbox;
    const limit = this.endpoint.options.maximumParallelInvocationsPerClient;
    while (this.inboxHead < inbox.length && this.phase === 'connected') {
      const message = inbox[this.inboxHead];
      if (message.type === MessageType.Invocation) {
        if (this.activeInvocations >= limit) {
          this.waiting = true;
          return;
        }
        this.activeInvocations++;
      }
      this.inboxHead++;
      this.dispatch(message);
    }
    inbox.length = 0;
    this.inboxHead = 0;
    this.waiting = false;
  }

  /** Resumes the message loop after a wait: queued messages first, then input held meanwhile. */
  private resume(): void {
    if (this.phase !== 'connected') return;
    this.drainInbox();
    while (!this.waiting && this.heldInput.length > 0 && this.phase === 'connected') {
      const chunk = this.heldInput.shift()!;
      this.heldInputBytes -= chunk.length;
      this.parse(chunk);
    }
    if (this.inputPaused && !this.waiting) {
      this.inputPaused = false;
      this.http.resumeInput();
    }
  }

  private dispatch(message: HubMessage): void {
    switch (message.type) {
      case MessageType.Invocation:
        this.runInvocation(message);
        return;
      case MessageType.StreamInvocation:
        this.rejectStreamInvocation(message);
        return;
      case MessageType.Completion:
        this.receiveCompletion(message);
        return;
      case MessageType.Ping:
        // The first client Ping arms the client timeout (HubDispatcher@v10 L198-L200).
        this.clientTimeoutArmed = true;
        return;
      case MessageType.Close:
        // The client is leaving: answer with a plain Close and end (HubDispatcher@v10 L231-L234).
        this.close({ type: MessageType.Close });
        return;
      default:
        // StreamItem and CancelInvocation for unknown streams, Ack and Sequence without stateful reconnect:
        // nothing to do, as in .NET.
        return;
    }
  }

  private receiveCompletion(message: CompletionMessage): void {
    try {
      this.endpoint.lifetime.setConnectionResult(this.connectionId, message);
    } catch (error) {
      this.endpoint.log.warn({ err: error, connectionId: this.connectionId }, 'completion for another connection');
    }
  }

  private rejectStreamInvocation(message: StreamInvocationMessage): void {
    const method = this.endpoint.methods.get(message.target.toLowerCase());
    const error =
      method === undefined
        ? withErrorDetail(
            InvocationErrors.failedToInvoke(message.target),
            new HubException(InvocationErrors.methodDoesNotExist),
            this.endpoint.options.enableDetailedErrors,
          )
        : InvocationErrors.nonStreamingMethodWithStreamInvocation(message.target);
    this.send({ type: MessageType.Completion, invocationId: message.invocationId, error });
  }

  /**
   * Binds arguments and runs a hub method; the slot it holds is released when it settles. A method that returns a
   * plain value completes synchronously, as in .NET, so its Completion precedes anything the loop does next.
   */
  private runInvocation(message: InvocationMessage): void {
    const { target, invocationId } = message;
    const detailed = this.endpoint.options.enableDetailedErrors;
    const method = this.endpoint.methods.get(target.toLowerCase());
    if (method === undefined) {
      // Unknown methods fail binding with this HubException, whose detail always shows (spec §2.6).
      this.complete(
        invocationId,
        withErrorDetail(InvocationErrors.failedToInvoke(target), new HubException(InvocationErrors.methodDoesNotExist), detailed),
      );
      this.releaseSlot();
      return;
    }
    const args = this.bindArguments(message, method);
    if (args === null) {
      this.releaseSlot();
      return;
    }
    let result: unknown;
    try {
      result = method.implementation.apply(this.endpoint.createHub(this), args);
    } catch (error) {
      this.invocationFailed(invocationId, method.name, target, error);
      this.releaseSlot();
      return;
    }
    if (result instanceof Promise || (typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function')) {
      (result as PromiseLike<unknown>).then(
        (value) => {
          if (invocationId !== undefined) this.completeWithResult(invocationId, target, value);
          this.releaseSlot();
        },
        (error: unknown) => {
          this.invocationFailed(invocationId, method.name, target, error);
          this.releaseSlot();
        },
      );
      return;
    }
    if (invocationId !== undefined) this.completeWithResult(invocationId, target, result);
    this.releaseSlot();
  }

  /**
   * The arguments the method gets, or `null` after answering a binding failure: a wrong count, or an argument its
   * schema rejects (.NET's `InvocationBindingFailureMessage`; detail only with detailed errors).
   */
  private bindArguments(message: InvocationMessage, method: HubMethod): unknown[] | null {
    const detailed = this.endpoint.options.enableDetailedErrors;
    const args = message.arguments;
    let failure: string | undefined;
    if (args.length !== method.parameterCount) {
      failure = InvocationErrors.argumentCount(args.length, method.parameterCount);
    } else if (method.schemas !== undefined) {
      const bound: unknown[] = new Array(args.length);
      for (let i = 0; i < args.length; i++) {
        const outcome = method.schemas[i].safeParse(args[i]);
        if (!outcome.success) {
          failure = InvocationErrors.bindingArguments;
          break;
        }
        bound[i] = outcome.data;
      }
      if (failure === undefined) return bound;
    }
    if (failure === undefined) return args;
    this.complete(
      message.invocationId,
      withErrorDetail(InvocationErrors.failedToInvoke(message.target), invalidData(failure), detailed),
    );
    return null;
  }

  private invocationFailed(invocationId: string | undefined, methodName: string, target: string, error: unknown): void {
    if (!(error instanceof HubException)) {
      this.endpoint.log.error({ err: error, connectionId: this.connectionId, method: methodName }, 'hub method failed');
    }
    this.complete(
      invocationId,
      withErrorDetail(InvocationErrors.unexpectedError(target), error, this.endpoint.options.enableDetailedErrors),
    );
  }

  /** Frees an invocation slot; a loop waiting for one goes on. */
  private releaseSlot(): void {
    this.activeInvocations--;
    if (this.waiting && this.phase === 'connected') this.resume();
  }

  /** Sends a Completion error, if the invocation expects an answer (non-blocking ones never get one). */
  private complete(invocationId: string | undefined, error: string): void {
    if (invocationId !== undefined) this.send({ type: MessageType.Completion, invocationId, error });
  }

  private completeWithResult(invocationId: string, target: string, result: unknown): void {
    let bytes: Buffer;
    try {
      // A void method's Completion still carries `result: null` (CompletionMessage.WithResult; spec §2.4).
      bytes = this.protocolInUse!.writeMessage({
        type: MessageType.Completion,
        invocationId,
        result: result === undefined ? null : result,
      });
    } catch (error) {
      this.endpoint.log.error({ err: error, connectionId: this.connectionId, method: target }, 'result not serializable');
      this.complete(
        invocationId,
        withErrorDetail(InvocationErrors.unexpectedError(target), error, this.endpoint.options.enableDetailedErrors),
      );
      return;
    }
    if (this.phase !== 'closed') this.http.write(bytes);
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
    // The format switches before the reply, so a binary protocol's `{}` goes out in a Binary frame (§1.5).
    this.http.transferFormat = protocol.transferFormat;
    this.http.write(HANDSHAKE_SUCCESS);
    this.lastPingAt = Date.now();
    this.phase = 'starting';
    this.hold(handshake.rest);
    void this.start();
  }

  private failHandshake(error: string): void {
    this.endpoint.log.debug({ connectionId: this.connectionId, error }, 'handshake failed');
    // Handshake errors go out as text and end the connection without a Close message (HubHandler@v10 L140-L143).
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
      await this.endpoint.createHub(this).onConnected();
    } catch (error) {
      this.endpoint.log.error({ err: error, connectionId: this.connectionId }, 'onConnected failed');
      // .NET: a Close with the error and no allowReconnect; onDisconnected is not run (HubHandler@v10 L165-L176).
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
    this.endpoint.log.debug({ connectionId: this.connectionId, protocol: this.protocol }, 'hub connection started');
    this.resume();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Keep-alive and timeouts

  onHeartbeat(now: number): void {
    const options = this.endpoint.options;
    if (this.phase === 'handshake') {
      if (now - this.startedAt >= options.handshakeTimeoutMs) this.failHandshake(HandshakeErrors.canceled);
      return;
    }
    if (this.phase === 'closed') return;
    if (this.clientTimeoutArmed && now - this.lastReceiveAt >= options.clientTimeoutIntervalMs) {
      const error = new Error(
        `Client hasn't sent a message/ping within the configured ClientTimeoutInterval.`,
      );
      error.name = 'OperationCanceledException';
      this.closeWithError(error);
      return;
    }
    // Long polling has inherent keep-alive: no pings there (Dispatcher@v10 L606-L608).
    if (this.http.transport !== 'LongPolling' && now - this.lastPingAt >= options.keepAliveIntervalMs) {
      this.lastPingAt = now;
      this.http.write(this.endpoint.pingBytes(this.protocolInUse!));
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Closing

  /** Closes because the connection failed (invalid data, timeout): the client may reconnect (spec §2.8). */
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
    this.inbox.length = 0;
    this.abortController.abort();
    this.endpoint.connectionEnded(this);
    void this.runDisconnected(error);
  }

  private async runDisconnected(error: Error | undefined): Promise<void> {
    // Order as .NET: the hub's onDisconnected while the connection still has its groups, then the lifetime
    // manager forgets it (HubHandler@v10 L140-L261).
    if (this.hubConnected) {
      try {
        await this.endpoint.createHub(this).onDisconnected(error);
      } catch (hookError) {
        this.endpoint.log.error({ err: hookError, connectionId: this.connectionId }, 'onDisconnected failed');
      }
    }
    if (this.registered) {
      try {
        await this.endpoint.lifetime.onDisconnected(this);
      } catch (lifetimeError) {
        this.endpoint.log.error({ err: lifetimeError, connectionId: this.connectionId }, 'lifetime manager failed');
      }
    }
    this.endpoint.log.debug({ connectionId: this.connectionId }, 'hub connection ended');
  }
}
