/**
 * A 2.x connection's place in one hub: what the hub runtime sees of it. It is registered with the hub's lifetime
 * manager as any Core connection is (so `clients.all`, groups, users and the Redis backplane reach it) and handed
 * to the hub's dispatcher as a `DispatchedConnection` (so the same methods, filters, schemas and `static authorize`
 * run). What it writes goes to its {@link AspNetConnection}, which frames it for the 2.x client.
 */
import { logEvent } from '../shared/log-events';
import type { HubProtocol } from '../../protocol/hub-protocol';
import {
  MessageType,
  type CloseMessage,
  type HubMessage,
  type InvocationMessage,
  type StreamItemMessage,
} from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';
import { writeClientHubInvocation, writeHubResponse, type LegacyHubRequest } from '../../protocol/aspnet/wire';
import { HubException } from '../shared/errors';
import type { ManagedConnection } from '../lifetime/hub-lifetime-manager';
import type { SerializedHubMessage } from '../lifetime/serialized-message';
import type { GroupManager, HubCallerClients, HubCallerContext, HubHttpRequest } from '../hub/hub';
import { CallerHubClients, GuardedHubClients, type ClientInvokeGuard } from '../hub/hub-clients';
import type { BoundInvocation, DispatchedConnection } from '../hub/dispatched-connection';
import type { HubEndpoint } from '../hub/hub-endpoint';
import type { InvocationOutcome } from '../hub/hub-stats';
import type { ResultStream } from '../hub/result-stream';
import { StreamTracker } from '../hub/stream-tracker';

/** What a seat needs of the 2.x connection it belongs to. */
export interface SeatOwner {
  readonly connectionId: string;
  readonly userIdentifier: string | undefined;
  readonly httpRequest: HubHttpRequest;
  readonly transportName: TransportName;
  readonly connectionAborted: AbortSignal;
  /** Queues a hub message (a client call) for the client, buffered for a reconnect. */
  enqueue(bytes: Buffer): void;
  /** Hands the answer to an invocation to whoever waits for it (a `/send` request, or the WebSocket). */
  answer(invocationId: string, bytes: Buffer): void;
  /** Ends the connection from the server (a Close of the hub runtime, `context.abort()`). */
  abortFromServer(error: string | undefined): void;
  /** The connection's groups changed: its client gets a new groups token. */
  groupsChanged(): void;
}

const kCallerState = Symbol('fastify-signalr.aspnetCallerState');

/**
 * The hub state a 2.x client round-trips (`$.connection.chatHub.state`, the .NET client's `proxy["name"]`), as
 * the current invocation sees it: read it, and change it to change the client's copy — the answer carries it back.
 * `undefined` for a Core client, which has no such state. The state belongs to the connection's running invocation:
 * with `maximumParallelInvocationsPerClient` above 1, invocations running together share the latest one.
 */
export function callerState(context: HubCallerContext): Record<string, unknown> | undefined {
  return (context as Partial<Record<typeof kCallerState, Record<string, unknown>>>)[kCallerState];
}

/**
 * Reports progress of the running invocation to a 2.x caller (`deferred.progress(...)` in the jQuery client,
 * `IProgress<T>` in .NET's): a `{"I":"P|id","P":{"I":id,"D":value}}` message, sent among the connection's messages
 * ahead of the answer. Returns false, sending nothing, for a Core client or outside an invocation that awaits an
 * answer.
 */
export function reportProgress(context: HubCallerContext, value: unknown): boolean {
  return context instanceof AspNetHubSeat ? context.progress(value) : false;
}

/**
 * The hub protocol of one hub's 2.x clients, for the lifetime manager's serialize-once messages: an Invocation
 * becomes `{"H":hub,"M":method,"A":[args]}`. Its name is the hub's, so a message is serialized once per hub.
 */
export function legacyHubProtocol(hubName: string): HubProtocol {
  return {
    name: `aspnet-signalr-2:${hubName}`,
    version: 1,
    transferFormat: 'Text',
    isVersionSupported: () => false,
    createReader: () => {
      throw new Error('2.x clients are read by the 2.x endpoint, not through a hub protocol reader.');
    },
    writeMessage(message: HubMessage): Buffer {
      if (message.type !== MessageType.Invocation)
        throw new TypeError(`A 2.x client takes no message of type ${message.type}.`);
      return writeClientHubInvocation(hubName, message.target, message.arguments);
    },
  };
}

/** One 2.x connection as one hub sees it. */
export class AspNetHubSeat implements DispatchedConnection, ManagedConnection {
  readonly protocol = 'aspnet-signalr-2';
  /** The state of the invocation running now (see {@link callerState}). */
  [kCallerState]: Record<string, unknown> = {};
  private itemsMap: Map<unknown, unknown> | null = null;
  private sharedClients: CallerHubClients | undefined;
  private streamTracker: StreamTracker | null = null;
  private ownGroups: GroupManager | undefined;
  waitingInvocation: BoundInvocation | null = null;
  private freeSlots: number;
  /** Invocations waiting, in order, for a slot: the head may be bound already (`waitingInvocation`). */
  private readonly queue: { message: InvocationMessage; request: LegacyHubRequest }[] = [];
  private pumping = false;
  /** The failure of the invocation being answered, handed from `logFailure` to `sendCompletionError`. */
  private failure: unknown = undefined;
  private running = 0;
  registered = false;
  hubConnected = false;
  closed = false;

  constructor(
    readonly hubName: string,
    readonly endpoint: HubEndpoint,
    private readonly owner: SeatOwner,
    readonly wireProtocol: HubProtocol,
  ) {
    this.freeSlots = endpoint.options.maximumParallelInvocationsPerClient;
  }

  // HubCallerContext ----------------------------------------------------------------------------------------------
  get connectionId(): string {
    return this.owner.connectionId;
  }
  get userIdentifier(): string | undefined {
    return this.owner.userIdentifier;
  }
  get user(): unknown {
    return this.owner.httpRequest.user;
  }
  get httpRequest(): HubHttpRequest {
    return this.owner.httpRequest;
  }
  get transport(): TransportName {
    return this.owner.transportName;
  }
  get items(): Map<unknown, unknown> {
    return (this.itemsMap ??= new Map());
  }
  get connectionAborted(): AbortSignal {
    return this.owner.connectionAborted;
  }
  abort(): void {
    this.owner.abortFromServer(undefined);
  }

  // Writing (lifetime manager) --------------------------------------------------------------------------------------
  write(message: SerializedHubMessage): void {
    if (this.closed) return;
    if (message.message?.type === MessageType.Close) {
      this.owner.abortFromServer(message.message.error);
      return;
    }
    let bytes: Buffer;
    try {
      bytes = message.getBytes(this.wireProtocol);
    } catch (error) {
      this.endpoint.log.warn(
        { err: error, connectionId: this.connectionId },
        'message not deliverable to a 2.x client',
      );
      return;
    }
    this.endpoint.stats.messagesSent++;
    this.owner.enqueue(bytes);
  }

  // What the dispatcher uses ---------------------------------------------------------------------------------------
  get hubClients(): CallerHubClients {
    return (this.sharedClients ??= new CallerHubClients(this.endpoint.lifetime, this.connectionId));
  }
  guardedClients(guard: ClientInvokeGuard): HubCallerClients {
    return new GuardedHubClients(this.hubClients, guard);
  }
  /** The hub's groups, telling the connection when its own membership changes (for its groups token). */
  get groups(): GroupManager {
    if (this.ownGroups !== undefined) return this.ownGroups;
    const groups = this.endpoint.groups;
    const changed = (connectionId: string) => {
      if (connectionId === this.connectionId) this.owner.groupsChanged();
    };
    return (this.ownGroups = {
      addToGroup: async (connectionId, group) => {
        await groups.addToGroup(connectionId, group);
        changed(connectionId);
      },
      removeFromGroup: async (connectionId, group) => {
        await groups.removeFromGroup(connectionId, group);
        changed(connectionId);
      },
      addUserToGroup: (userId, group, options) => groups.addUserToGroup(userId, group, options),
      removeUserFromGroup: (userId, group) => groups.removeUserFromGroup(userId, group),
    });
  }
  get streams(): StreamTracker {
    return (this.streamTracker ??= new StreamTracker(this.endpoint.options, () => undefined));
  }
  get openStreams(): StreamTracker | null {
    return this.streamTracker;
  }
  takeSlot(): boolean {
    if (this.freeSlots === 0) return false;
    this.freeSlots--;
    return true;
  }
  releaseSlot(): void {
    this.freeSlots++;
    if (this.queue.length > 0) queueMicrotask(() => this.pump());
  }

  /** The id of the invocation dispatched last, while it has not been answered: where progress goes. */
  private runningInvocationId: string | undefined;

  /** Sends a progress report of the running invocation (see {@link reportProgress}). */
  progress(value: unknown): boolean {
    const id = this.runningInvocationId;
    if (id === undefined || this.closed) return false;
    this.owner.enqueue(writeHubResponse({ id, progress: value === undefined ? null : value }));
    return true;
  }

  /** The requests being answered, by invocation id: their hub and method names as the client wrote them. */
  private readonly inFlight = new Map<string, LegacyHubRequest>();

  /** A hub request of the client: dispatched in order, each waiting for an invocation slot as a Core invocation does. */
  invoke(request: LegacyHubRequest): void {
    if (request.id !== undefined) this.inFlight.set(request.id, request);
    const message: InvocationMessage = {
      type: MessageType.Invocation,
      target: request.method,
      arguments: request.args,
      ...(request.id !== undefined && { invocationId: request.id }),
    };
    this.queue.push({ message, request });
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const head = this.queue[0];
        this[kCallerState] = { ...(head.request.state ?? {}) };
        this.runningInvocationId = head.request.id;
        if (!this.endpoint.dispatcher.dispatch(this, head.message)) break;
        this.queue.shift();
      }
    } finally {
      this.pumping = false;
    }
  }

  sendCompletionError(invocationId: string, error: string): void {
    const failure = this.failure;
    this.failure = undefined;
    const target = this.inFlight.get(invocationId);
    const detailed = this.endpoint.options.enableDetailedErrors;
    // 2.x: a HubException's message always, with `H` set; any other failure's text only with detailed errors, else
    // "There was an error invoking Hub method 'hub.method'." (HubDispatcher.ProcessResponse).
    if (failure instanceof HubException) {
      this.answer(invocationId, { id: invocationId, error: failure.message, isHubException: true });
      return;
    }
    const message = detailed
      ? failure instanceof Error
        ? failure.message
        : error
      : `There was an error invoking Hub method '${target?.hub ?? this.hubName}.${target?.method ?? ''}'.`;
    this.answer(invocationId, { id: invocationId, error: message });
  }

  sendCompletionResult(invocationId: string, _target: string, result: unknown): unknown {
    try {
      this.answer(invocationId, { id: invocationId, result: result === undefined ? null : result });
      return undefined;
    } catch (error) {
      return error;
    }
  }

  private answer(invocationId: string, response: Parameters<typeof writeHubResponse>[0]): void {
    this.inFlight.delete(invocationId);
    if (this.runningInvocationId === invocationId) this.runningInvocationId = undefined;
    const state = this[kCallerState];
    this.owner.answer(
      invocationId,
      writeHubResponse(Object.keys(state).length > 0 ? { ...response, state } : response),
    );
  }

  invocationStarted(): number {
    this.running++;
    return this.endpoint.stats.observer === null ? 0 : performance.now();
  }
  invocationSettled(methodName: string, outcome: InvocationOutcome, started: number): void {
    this.running--;
    const observer = this.endpoint.stats.observer;
    if (observer !== null) observer.invocationEnded(methodName, outcome, (performance.now() - started) / 1000);
  }
  clientPinged(): void {}
  close(message: CloseMessage): void {
    this.owner.abortFromServer(message.error);
  }
  closeWithError(error: unknown): void {
    this.owner.abortFromServer(error instanceof Error ? error.message : String(error));
  }
  acknowledge(): void {}
  resetSequence(): void {}
  logFailure(error: unknown, methodName: string, message: string): void {
    this.failure = error;
    if (error instanceof HubException) return;
    logEvent(
      this.endpoint.log,
      'error',
      'signalr.invocation.failed',
      { err: error, connectionId: this.connectionId, method: methodName },
      message,
    );
  }

  // Streams: 2.x has none; a streaming method is refused by the dispatcher before it runs.
  writeStreamItem(_message: StreamItemMessage): void {}
  get outboundBacklog(): number {
    return 0;
  }
  streamEnded(stream: ResultStream): void {
    this.streamTracker?.resultEnded(stream);
  }
}
