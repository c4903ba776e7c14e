/**
 * What the hub's dispatcher needs of one connection — the seam between `HubMessageDispatcher` (one per hub) and
 * `HubConnectionContext` (one per connection), so that neither imports the other's class.
 */
import type { CloseMessage } from '../../protocol/messages';
import type { GroupManager, HubCallerClients, HubCallerContext } from './hub';
import type { ClientInvokeGuard } from './hub-clients';
import type { HubMethod } from './hub-methods';
import type { InvocationOutcome } from './hub-stats';
import type { ResultStreamHost } from './result-stream';
import type { StreamTracker } from './stream-tracker';

/** A method found and its arguments bound, kept while its Invocation waits for a slot (bound once, as .NET's parser does). */
export interface BoundInvocation {
  readonly method: HubMethod;
  readonly args: unknown[];
}

/** What the dispatcher needs of the connection a message came from. */
export interface DispatchedConnection extends HubCallerContext, ResultStreamHost {
  readonly connectionId: string;
  /** Whether the connection has ended (an asynchronous authorization may settle after it did). */
  readonly closed: boolean;
  /** The connection's clients without a client-results guard. */
  readonly hubClients: HubCallerClients;
  /** The connection's clients with `invoke` consulting `guard` first. */
  guardedClients(guard: ClientInvokeGuard): HubCallerClients;
  readonly groups: GroupManager;
  /** The connection's streams, made on first use: most connections never stream. */
  readonly streams: StreamTracker;
  /** The connection's streams if any were ever opened, else `null`. */
  readonly openStreams: StreamTracker | null;
  /** The Invocation at the head of the inbound loop while it waits for a slot. */
  waitingInvocation: BoundInvocation | null;
  /** Takes an invocation slot; false when all are taken. */
  takeSlot(): boolean;
  /** Gives an invocation slot back. */
  releaseSlot(): void;
  /** Sends a Completion with an error. */
  sendCompletionError(invocationId: string, error: string): void;
  /** Sends a Completion with a result; returns the serialization failure instead of throwing it. */
  sendCompletionResult(invocationId: string, target: string, result: unknown): unknown;
  /** An invocation starts running (graceful shutdown waits for it); returns the start time for metrics. */
  invocationStarted(): number;
  /** An invocation that ran has settled. */
  invocationSettled(methodName: string, outcome: InvocationOutcome, started: number): void;
  /** A client Ping: the client timeout runs from now on. */
  clientPinged(): void;
  /** Sends `message` and ends the connection. */
  close(message: CloseMessage): void;
  /** Closes with an error the client may reconnect after. */
  closeWithError(error: unknown): void;
  /** Stateful reconnect: the client acknowledged messages up to `sequenceId`. */
  acknowledge(sequenceId: number): void;
  /** Stateful reconnect: the client's Sequence message. */
  resetSequence(sequenceId: number): void;
  /** Logs a hub method's failure (rate-limited per connection). */
  logFailure(error: unknown, methodName: string, message: string): void;
}
