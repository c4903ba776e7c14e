/**
 * Client proxies: the `clients.*.send(...)` surface of hubs and hub contexts, translated into lifetime-manager
 * operations. Caller-relative targets are the plain ones with the caller's id filled in, as .NET does:
 * `others` is all-except-caller, `othersInGroup` is group-except-caller.
 */
import { GroupErrors, HubException, userGroupsNeedPresence } from '../shared/errors';
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager';
import type { ClientProxy, GroupManager, HubCallerClients, HubClients, SingleClientProxy } from './hub';

/**
 * What a hub method's `invoke` (client results) does to the invocation it runs in: give up its invocation slot
 * (docs/protocol.md §2.7; .NET 8+ `HubCallerClients`), or refuse because client results are not allowed there
 * (`onConnected`).
 */
export interface ClientInvokeGuard {
  /** Runs before every client invocation made through the guarded proxies; throws to refuse it. */
  beforeClientInvoke(): void;
}

/** Splits a trailing `AbortSignal` (cancellation, not sent) from the arguments of `invoke`. */
function splitSignal(args: unknown[]): [unknown[], AbortSignal | undefined] {
  const last = args[args.length - 1];
  return last instanceof AbortSignal ? [args.slice(0, -1), last] : [args, undefined];
}

function singleClient(
  lifetime: HubLifetimeManager,
  connectionId: string,
  guard?: ClientInvokeGuard,
): SingleClientProxy {
  return {
    send: (method, ...args) => lifetime.sendConnection(connectionId, method, args),
    invoke: <T>(method: string, ...rest: unknown[]) => {
      const [args, signal] = splitSignal(rest);
      try {
        guard?.beforeClientInvoke();
        return lifetime.invokeConnection(connectionId, method, args, signal) as Promise<T>;
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
}

/** The clients of a hub as seen from outside any connection (`IHubContext.Clients`). */
export class LifetimeHubClients implements HubClients {
  readonly all: ClientProxy;

  constructor(protected readonly lifetime: HubLifetimeManager) {
    this.all = { send: (method, ...args) => lifetime.sendAll(method, args) };
  }

  allExcept(excludedConnectionIds: readonly string[]): ClientProxy {
    const excluded = [...excludedConnectionIds];
    return { send: (method, ...args) => this.lifetime.sendAllExcept(method, args, excluded) };
  }

  client(connectionId: string): SingleClientProxy {
    return singleClient(this.lifetime, connectionId);
  }

  clients(connectionIds: readonly string[]): ClientProxy {
    const ids = [...connectionIds];
    return { send: (method, ...args) => this.lifetime.sendConnections(ids, method, args) };
  }

  group(groupName: string): ClientProxy {
    return { send: (method, ...args) => this.lifetime.sendGroup(groupName, method, args) };
  }

  groups(groupNames: readonly string[]): ClientProxy {
    const names = [...groupNames];
    return { send: (method, ...args) => this.lifetime.sendGroups(names, method, args) };
  }

  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): ClientProxy {
    const excluded = [...excludedConnectionIds];
    return { send: (method, ...args) => this.lifetime.sendGroupExcept(groupName, method, args, excluded) };
  }

  user(userId: string): ClientProxy {
    return { send: (method, ...args) => this.lifetime.sendUser(userId, method, args) };
  }

  users(userIds: readonly string[]): ClientProxy {
    const ids = [...userIds];
    return { send: (method, ...args) => this.lifetime.sendUsers(ids, method, args) };
  }
}

/** The clients of a hub as seen by one connection's hub methods. */
export class CallerHubClients extends LifetimeHubClients implements HubCallerClients {
  readonly caller: SingleClientProxy;
  readonly others: ClientProxy;
  private readonly callerOnly: readonly string[];

  constructor(
    lifetime: HubLifetimeManager,
    readonly callerId: string,
  ) {
    super(lifetime);
    this.callerOnly = [callerId];
    this.caller = singleClient(lifetime, callerId);
    this.others = { send: (method, ...args) => lifetime.sendAllExcept(method, args, this.callerOnly) };
  }

  othersInGroup(groupName: string): ClientProxy {
    return { send: (method, ...args) => this.lifetime.sendGroupExcept(groupName, method, args, this.callerOnly) };
  }

  /** One connection, with `invoke` consulting `guard` first. */
  guardedClient(connectionId: string, guard: ClientInvokeGuard): SingleClientProxy {
    return singleClient(this.lifetime, connectionId, guard);
  }
}

/**
 * A connection's clients as one invocation sees them: the connection's shared targets, except that
 * `caller.invoke` and `client(id).invoke` consult the invocation's guard. One small object per invocation that
 * uses `this.clients`; the targets themselves are not rebuilt.
 */
export class GuardedHubClients implements HubCallerClients {
  private callerProxy: SingleClientProxy | undefined;

  constructor(
    private readonly shared: CallerHubClients,
    private readonly guard: ClientInvokeGuard,
  ) {}

  get all(): ClientProxy {
    return this.shared.all;
  }

  get others(): ClientProxy {
    return this.shared.others;
  }

  get caller(): SingleClientProxy {
    return (this.callerProxy ??= this.shared.guardedClient(this.shared.callerId, this.guard));
  }

  client(connectionId: string): SingleClientProxy {
    return this.shared.guardedClient(connectionId, this.guard);
  }

  allExcept(excludedConnectionIds: readonly string[]): ClientProxy {
    return this.shared.allExcept(excludedConnectionIds);
  }

  clients(connectionIds: readonly string[]): ClientProxy {
    return this.shared.clients(connectionIds);
  }

  group(groupName: string): ClientProxy {
    return this.shared.group(groupName);
  }

  groups(groupNames: readonly string[]): ClientProxy {
    return this.shared.groups(groupNames);
  }

  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): ClientProxy {
    return this.shared.groupExcept(groupName, excludedConnectionIds);
  }

  othersInGroup(groupName: string): ClientProxy {
    return this.shared.othersInGroup(groupName);
  }

  user(userId: string): ClientProxy {
    return this.shared.user(userId);
  }

  users(userIds: readonly string[]): ClientProxy {
    return this.shared.users(userIds);
  }
}

/** Group membership through the lifetime manager. */
export function lifetimeGroupManager(
  lifetime: HubLifetimeManager,
  maximumGroupNameLength: number | null = null,
): GroupManager {
  return {
    addToGroup: (connectionId, groupName) => {
      if (maximumGroupNameLength !== null && groupName.length > maximumGroupNameLength) {
        return Promise.reject(new HubException(GroupErrors.nameTooLong(groupName.length, maximumGroupNameLength)));
      }
      return lifetime.addToGroup(connectionId, groupName);
    },
    removeFromGroup: (connectionId, groupName) => lifetime.removeFromGroup(connectionId, groupName),
    addUserToGroup: async (userId, groupName, options = {}) => {
      if (maximumGroupNameLength !== null && groupName.length > maximumGroupNameLength) {
        throw new HubException(GroupErrors.nameTooLong(groupName.length, maximumGroupNameLength));
      }
      if (lifetime.addUserToGroup === undefined) throw userGroupsNeedPresence();
      await lifetime.addUserToGroup(userId, groupName, options);
    },
    removeUserFromGroup: async (userId, groupName) => {
      if (lifetime.removeUserFromGroup === undefined) throw userGroupsNeedPresence();
      await lifetime.removeUserFromGroup(userId, groupName);
    },
  };
}
