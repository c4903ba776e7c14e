/**
 * Pending server-to-client invocations ("client results", docs/protocol.md §2.7): the bookkeeping every lifetime
 * manager shares, as ASP.NET Core's `ClientResultsManager`.
 */
import { hasResult, type CompletionMessage } from '../../protocol/messages';
import { ClientResultErrors, HubException, namedError } from '../errors';

interface PendingResult {
  readonly connectionId: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Errors a connection-level failure of a client result carries (.NET's `IOException`). */
export class ConnectionIOError extends Error {
  override readonly name = 'IOException';
}

/** Tracks invocations waiting for a client's Completion. */
export class ClientResultsManager {
  private readonly pending = new Map<string, PendingResult>();

  /** Number of invocations waiting. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers a wait for `invocationId` from `connectionId`. The promise resolves with the client's result, rejects
   * with a `HubException` holding its error, with "Invocation canceled by the server." when `signal` aborts, and
   * with "Connection '<id>' disconnected." when {@link ClientResultsManager.failConnection} runs for it.
   */
  add(connectionId: string, invocationId: string, signal: AbortSignal | undefined): Promise<unknown> {
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
      throw namedError('InvalidOperationException', ClientResultErrors.wrongConnection(connectionId, completion.invocationId));
    }
    this.pending.delete(completion.invocationId);
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
    this.pending.delete(completion.invocationId);
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
    this.pending.delete(invocationId);
  }

  /** Rejects every wait (the manager is closing): each as if its connection went away. */
  failAll(): void {
    for (const entry of [...this.pending.values()]) this.failConnection(entry.connectionId);
  }

  /** Rejects every wait of a connection that went away. */
  failConnection(connectionId: string): void {
    for (const [invocationId, entry] of this.pending) {
      if (entry.connectionId !== connectionId) continue;
      this.pending.delete(invocationId);
      entry.reject(new ConnectionIOError(ClientResultErrors.connectionDisconnected(connectionId)));
    }
  }
}
