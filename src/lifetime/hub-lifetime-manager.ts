/**
 * The hub runtime ↔ routing boundary (ASP.NET Core's `HubLifetimeManager<THub>`): who is connected, groups and
 * users, and delivery. The in-memory manager is the single-node default; a backplane manager spreads the same
 * operations over several servers. Swapping them changes delivery topology, never what hubs or clients see.
 */
import type { CompletionMessage } from '../../protocol/messages';
import type { HubPresence } from './presence';
import type { SerializedHubMessage } from './serialized-message';

/** What a lifetime manager needs of a connection. */
export interface ManagedConnection {
  /** The public connection id. */
  readonly connectionId: string;
  /** The user id, if any; `user` sends reach every connection with it. */
  readonly userIdentifier: string | undefined;
  /**
   * The name of the connection's hub protocol (`json`, `messagepack`). A backplane needs it to relay the
   * connection's answer to a client-result invocation made on another server (docs/protocol.md §3.7).
   */
  readonly protocol?: string;
  /** The transport's name (`WebSockets`, `ServerSentEvents`, `LongPolling`), for presence. */
  readonly transport?: string;
  /** Writes a message, serializing it for this connection's protocol if not done yet. Never blocks. */
  write(message: SerializedHubMessage): void;
  /** Aborted when the connection ends. */
  readonly connectionAborted: AbortSignal;
}

/** Routing operations for one hub. Every send resolves once the message is handed on, never per client. */
export interface HubLifetimeManager {
  onConnected(connection: ManagedConnection): Promise<void>;
  onDisconnected(connection: ManagedConnection): Promise<void>;

  sendAll(method: string, args: readonly unknown[]): Promise<void>;
  sendAllExcept(method: string, args: readonly unknown[], excludedConnectionIds: readonly string[]): Promise<void>;
  sendConnection(connectionId: string, method: string, args: readonly unknown[]): Promise<void>;
  sendConnections(connectionIds: readonly string[], method: string, args: readonly unknown[]): Promise<void>;
  sendGroup(groupName: string, method: string, args: readonly unknown[]): Promise<void>;
  sendGroups(groupNames: readonly string[], method: string, args: readonly unknown[]): Promise<void>;
  sendGroupExcept(
    groupName: string,
    method: string,
    args: readonly unknown[],
    excludedConnectionIds: readonly string[],
  ): Promise<void>;
  sendUser(userId: string, method: string, args: readonly unknown[]): Promise<void>;
  sendUsers(userIds: readonly string[], method: string, args: readonly unknown[]): Promise<void>;

  addToGroup(connectionId: string, groupName: string): Promise<void>;
  removeFromGroup(connectionId: string, groupName: string): Promise<void>;

  /**
   * Invokes `method` on one connection and resolves with the client's result (docs/protocol.md §2.7). Rejects with the
   * client's error, when the connection does not exist or disconnects, or when `signal` aborts.
   */
  invokeConnection(
    connectionId: string,
    method: string,
    args: readonly unknown[],
    signal?: AbortSignal,
  ): Promise<unknown>;
  /**
   * Hands a Completion that `connectionId` sent to the invocation waiting for it; returns false when no
   * server-initiated invocation has that id.
   */
  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean;

  /**
   * Who is connected, in which groups (docs/protocol.md §3.9). A manager of connections has one; the emitter's
   * manager, which has no connections, has none.
   */
  readonly presence?: HubPresence;
  /** User-level groups (docs/protocol.md §3.9), where the manager keeps them. */
  addUserToGroup?(userId: string, groupName: string, options: { readonly ttlSeconds?: number }): Promise<void>;
  removeUserFromGroup?(userId: string, groupName: string): Promise<void>;

  /** Releases what the manager holds (subscriptions, timers). */
  close(): Promise<void>;
}
