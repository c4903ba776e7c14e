/**
 * Pending server-to-client invocations ("client results", docs/protocol.md §2.7): the bookkeeping every lifetime
 * manager shares, as ASP.NET Core's `ClientResultsManager`.
 */
import { hasResult, type CompletionMessage } from '../../protocol/messages';
import { ClientResultErrors, GroupErrors, HubException, namedError, type SignalRErrorCode } from '../shared/errors';

interface PendingResult {
  readonly connectionId: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Errors a connection-level failure of a client result carries (.NET's `IOException`). */
export class ConnectionIOError extends Error {
  override readonly name = 'IOException';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_CLIENT_RESULT_CONNECTION';
}

/** Bounds on the client results waiting at once. */
export interface ClientResultLimits {
  /** Results one connection may owe at once; `null` for no bound. */
  readonly maximumPerConnection: number | null;
  /** Results the manager (one hub on this server) may wait for at once; `null` for no bound. */
  readonly maximumTotal: number | null;
}

/** What a lifetime manager bounds per connection. */
export interface LifetimeLimits {
  readonly clientResults: ClientResultLimits;
  /** Groups one connection of this server may be in at once; `null` for no bound. */
  readonly maximumGroupsPerConnection: number | null;
}

/** A `HubException` when `names` (a connection's groups) is full and `groupName` is not among them. */
export function checkGroupRoom(
  connectionId: string,
  names: ReadonlySet<string> | undefined,
  groupName: string,
  limit: number | null,
): void {
  if (limit === null || names === undefined || names.size < limit || names.has(groupName)) return;
  throw new HubException(GroupErrors.tooManyGroups(connectionId, limit));
}

/** The defaults of {@link ClientResultLimits}: see `maximumPendingClientResultsPerConnection` in the options. */
export const DEFAULT_CLIENT_RESULT_LIMITS: ClientResultLimits = Object.freeze({
  maximumPerConnection: 100,
  maximumTotal: 10_000,
});

/** The defaults of {@link LifetimeLimits}: see the hub options of the same names. */
export const DEFAULT_LIFETIME_LIMITS: LifetimeLimits = Object.freeze({
  clientResults: DEFAULT_CLIENT_RESULT_LIMITS,
  maximumGroupsPerConnection: 1_000,
});

/**
 * Tracks invocations waiting for a client's Completion, with each connection's invocation ids beside them so a
 * disconnect costs what that connection owes, not what every connection owes.
 */
export class ClientResultsManager {
  private readonly pending = new Map<string, PendingResult>();
  private readonly byConnection = new Map<string, Set<string>>();

  constructor(private readonly limits: ClientResultLimits = DEFAULT_CLIENT_RESULT_LIMITS) {}

  /** Number of invocations waiting. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers a wait for `invocationId` from `connectionId`. The promise resolves with the client's result, rejects
   * with a `HubException` holding its error, with "Invocation canceled by the server." when `signal` aborts, and
   * with "Connection '<id>' disconnected." when {@link ClientResultsManager.failConnection} runs for it.
   *
   * Throws a `HubException` (nothing is sent) when the connection already owes `maximumPerConnection` results, or
   * the manager waits for `maximumTotal`: a client that never answers cannot make the server hold ever more.
   */
  add(connectionId: string, invocationId: string, signal: AbortSignal | undefined): Promise<unknown> {
    const owed = this.byConnection.get(connectionId);
    const { maximumPerConnection, maximumTotal } = this.limits;
    if (maximumPerConnection !== null && owed !== undefined && owed.size >= maximumPerConnection) {
      throw new HubException(ClientResultErrors.tooManyForConnection(connectionId, maximumPerConnection));
    }
    if (maximumTotal !== null && this.pending.size >= maximumTotal) {
      throw new HubException(ClientResultErrors.tooManyForServer(maximumTotal));
    }
    return new Promise<unknown>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const finish = () => {
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(invocationId, {
        connectionId,
        resolve: (value) => {
          finish();
          resolve(value);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      });
      let ids = this.byConnection.get(connectionId);
      if (ids === undefined) this.byConnection.set(connectionId, (ids = new Set()));
      ids.add(invocationId);
      if (signal !== undefined) {
        onAbort = () => this.complete(connectionId, { type: 3, invocationId, error: ClientResultErrors.canceled });
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /**
   * Completes the invocation the Completion names. Returns false when none waits for it. Throws when the
   * Completion comes from another connection than the one invoked, as .NET does.
   */
  complete(connectionId: string, completion: CompletionMessage): boolean {
    const entry = this.pending.get(completion.invocationId);
    if (entry === undefined) return false;
    if (entry.connectionId !== connectionId) {
      throw namedError(
        'InvalidOperationException',
        ClientResultErrors.wrongConnection(connectionId, completion.invocationId),
      );
    }
    this.forget(completion.invocationId, entry);
    if (hasResult(completion)) entry.resolve(completion.result);
    // An answer with neither result nor error is not a result: .NET fails the call with a HubException whose
    // message is its own default (HubException(null)).
    else entry.reject(new HubException(completion.error ?? ClientResultErrors.noResult));
    return true;
  }

  /**
   * Completes the invocation a Completion relayed by another server names (docs/protocol.md §3.7: the reply on this
   * server's return channel carries no connection id; the answering server checked it). Returns false when none waits.
   */
  completeRelayed(completion: CompletionMessage): boolean {
    const entry = this.pending.get(completion.invocationId);
    if (entry === undefined) return false;
    this.forget(completion.invocationId, entry);
    if (completion.error !== undefined) entry.reject(new HubException(completion.error));
    else entry.resolve(completion.result ?? null);
    return true;
  }

  /** Whether an invocation with this id waits for its result here. */
  has(invocationId: string): boolean {
    return this.pending.has(invocationId);
  }

  /** Removes a wait without completing it (the invocation could not be sent). */
  remove(invocationId: string): void {
    const entry = this.pending.get(invocationId);
    if (entry !== undefined) this.forget(invocationId, entry);
  }

  /** Rejects every wait (the manager is closing): each as if its connection went away. */
  failAll(): void {
    for (const connectionId of [...this.byConnection.keys()]) this.failConnection(connectionId);
  }

  /** Rejects every wait of a connection that went away. */
  failConnection(connectionId: string): void {
    const ids = this.byConnection.get(connectionId);
    if (ids === undefined) return;
    this.byConnection.delete(connectionId);
    for (const invocationId of ids) {
      const entry = this.pending.get(invocationId);
      if (entry === undefined) continue;
      this.pending.delete(invocationId);
      entry.reject(new ConnectionIOError(ClientResultErrors.connectionDisconnected(connectionId)));
    }
  }

  private forget(invocationId: string, entry: PendingResult): void {
    this.pending.delete(invocationId);
    const ids = this.byConnection.get(entry.connectionId);
    if (ids === undefined) return;
    ids.delete(invocationId);
    if (ids.size === 0) this.byConnection.delete(entry.connectionId);
  }
}
