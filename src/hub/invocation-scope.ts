/**
 * The services one hub instance is bound to while it runs (.NET's per-invocation `HubCallerClients`): its
 * connection's, plus what belongs to the invocation — its abort signal and, for a plain invocation, the invocation
 * slot it gives up when it first asks a client for a result.
 */
import { ClientResultErrors, namedError } from '../shared/errors';
import type { DispatchedConnection } from './dispatched-connection';
import type { GroupManager, HubBinding, HubCallerClients, HubCallerContext } from './hub';
import type { ClientInvokeGuard } from './hub-clients';

/** What a hub instance may do with client results where it runs (docs/protocol.md §2.7). */
export const ClientInvoke = {
  /** A plain invocation holding a slot: the first client invocation gives the slot up (.NET 8+). */
  ReleasesSlot: 0,
  /** Streaming invocations, stream calls, `onDisconnected`: no slot to give up. */
  Free: 1,
  /** `onConnected`: refused, as in .NET. */
  Refused: 2,
} as const;
export type ClientInvoke = (typeof ClientInvoke)[keyof typeof ClientInvoke];

/**
 * The services of one hub instance: its connection's, plus what belongs to the invocation — its abort signal and,
 * for plain invocations, its invocation slot (.NET's per-invocation `HubCallerClients`).
 */
export class InvocationScope implements HubBinding, ClientInvokeGuard {
  private callerClients: HubCallerClients | undefined;

  constructor(
    private readonly connection: DispatchedConnection,
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
