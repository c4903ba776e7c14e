/**
 * The hub programming model: what an application writes.
 *
 * A hub is a class whose public methods clients call by name (case-insensitively, as in ASP.NET Core). A new
 * instance handles each invocation and each connect/disconnect event, with `this.clients`, `this.groups` and
 * `this.context` bound to the connection it serves.
 */
import type { FastifyRequest } from 'fastify';
import type { TransportName } from '../../protocol/negotiate';

/** Sends to a set of connections. */
export interface ClientProxy {
  /** Invokes `method` on every connection of the set with `args`; resolves once the message is on its way. */
  send(method: string, ...args: unknown[]): Promise<void>;
}

/** Sends to one connection, and can call it for a result. */
export interface SingleClientProxy extends ClientProxy {
  /**
   * Calls `method` on the client and resolves with what its handler returns ("client results"). Rejects with a
   * `HubException` holding the client's error, or when the connection goes away. When the last argument is an
   * `AbortSignal` it is not sent: aborting it cancels the wait (use `AbortSignal.timeout(ms)` for a timeout).
   *
   * From inside a hub method this may call the caller itself; but a Completion is read in order behind the
   * caller's other messages, so while another invocation of the caller waits for a slot
   * (`maximumParallelInvocationsPerClient`), the answer waits too — as in ASP.NET Core.
   */
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
}

/** Every way to address clients of a hub (ASP.NET Core's `IHubClients`). */
export interface HubClients {
  /** Every connection of the hub. */
  readonly all: ClientProxy;
  /** Every connection except these. */
  allExcept(excludedConnectionIds: readonly string[]): ClientProxy;
  /** One connection. */
  client(connectionId: string): SingleClientProxy;
  /** These connections. */
  clients(connectionIds: readonly string[]): ClientProxy;
  /** The members of a group. */
  group(groupName: string): ClientProxy;
  /** The members of any of these groups. */
  groups(groupNames: readonly string[]): ClientProxy;
  /** The members of a group except these connections. */
  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): ClientProxy;
  /** Every connection of a user. */
  user(userId: string): ClientProxy;
  /** Every connection of these users. */
  users(userIds: readonly string[]): ClientProxy;
}

/** {@link HubClients} seen from a hub method, plus the caller-relative targets (`IHubCallerClients`). */
export interface HubCallerClients extends HubClients {
  /** The connection that called. */
  readonly caller: SingleClientProxy;
  /** Every connection except the caller. */
  readonly others: ClientProxy;
  /** The members of a group except the caller. */
  othersInGroup(groupName: string): ClientProxy;
}

/** Group membership (`IGroupManager`). Works for connections on any server when a backplane is configured. */
export interface GroupManager {
  addToGroup(connectionId: string, groupName: string): Promise<void>;
  removeFromGroup(connectionId: string, groupName: string): Promise<void>;
}

/** What a hub knows of the connection it serves (`HubCallerContext`). */
export interface HubCallerContext {
  /** The public connection id (never the token). */
  readonly connectionId: string;
  /** The user id resolved when the connection started, if any. */
  readonly userIdentifier: string | undefined;
  /** The authenticated user as the auth layer left it on the request (`request.user`), if any. */
  readonly user: unknown;
  /** Per-connection storage that lives as long as the connection. */
  readonly items: Map<unknown, unknown>;
  /** The transport the connection uses. */
  readonly transport: TransportName;
  /** The hub protocol name the client chose (`json`, `messagepack`). */
  readonly protocol: string;
  /** Aborted when the connection ends. */
  readonly connectionAborted: AbortSignal;
  /** The HTTP request that started the connection's transport (query, headers, user). */
  readonly httpRequest: FastifyRequest;
  /** Closes the connection; the client gets a Close message without error and does not reconnect. */
  abort(): void;
}

/** An argument schema: anything with zod's `safeParse` shape. */
export interface ArgumentSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: unknown };
}

/**
 * Per-method argument schemas, keyed by method name: one schema per parameter. With a schema the declared
 * parameter count is the schema count, and an argument that fails its schema fails the invocation with .NET's
 * binding error instead of reaching the method. Parsed values (for example coerced dates) are what the method gets.
 */
export type HubMethodSchemas<T> = { readonly [K in keyof T]?: readonly ArgumentSchema[] };

/** The per-connection services a hub instance is bound to. */
export interface HubBinding {
  readonly clients: HubCallerClients;
  readonly groups: GroupManager;
  readonly context: HubCallerContext;
}

const kBinding = Symbol('fastify-signalr.hubBinding');

/**
 * Base class of every hub. Subclass it, add methods, and register the class with the plugin:
 *
 * ```ts
 * class ChatHub extends Hub {
 *   async sendMessage(user: string, message: string) {
 *     await this.clients.all.send('ReceiveMessage', user, message);
 *   }
 * }
 * ```
 *
 * Every own or inherited method of the subclass is callable, except the lifecycle methods and names starting
 * with `_`. The return value (or resolved promise) is the invocation's result. Throw a `HubException` to send
 * the caller a message; any other error reaches the caller as a generic text unless detailed errors are enabled.
 */
export abstract class Hub {
  /** Optional argument schemas per method; see {@link HubMethodSchemas}. */
  static schemas?: Readonly<Record<string, readonly ArgumentSchema[]>>;

  private [kBinding]!: HubBinding;

  /** Clients of the hub, including the caller-relative targets. */
  get clients(): HubCallerClients {
    return this[kBinding].clients;
  }

  /** Group membership. */
  get groups(): GroupManager {
    return this[kBinding].groups;
  }

  /** The connection this instance serves. */
  get context(): HubCallerContext {
    return this[kBinding].context;
  }

  /** Runs when a connection has completed its handshake, before it can invoke anything. */
  onConnected(): void | Promise<void> {}

  /**
   * Runs when a connection ends, before it leaves its groups.
   * @param _error why the connection failed, if it did not close cleanly
   */
  onDisconnected(_error?: Error): void | Promise<void> {}
}

/** A hub class with a constructor that takes no arguments. */
export type HubClass<T extends Hub = Hub> = new () => T;

/** Binds a fresh hub instance to a connection's services. */
export function bindHub<T extends Hub>(hub: T, binding: HubBinding): T {
  (hub as unknown as Record<symbol, HubBinding>)[kBinding] = binding;
  return hub;
}
