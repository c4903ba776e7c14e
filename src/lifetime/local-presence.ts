/**
 * Presence of this server only (`scope: 'local'`): answered from the lifetime manager's own tables, for a hub
 * without the Redis backplane's presence. Events are this server's changes.
 */
import type { ManagedConnection } from './hub-lifetime-manager';
import {
  decodeCursor,
  encodeCursor,
  pageSize,
  PresenceListeners,
  type GroupPresence,
  type HubPresence,
  type PresenceConnection,
  type PresenceEvent,
  type PresenceEventType,
  type PresenceListener,
  type PresencePage,
  type PresencePageOptions,
  type PresenceServer,
  type UserPresence,
} from './presence';

/** What a lifetime manager knows about its own connections. */
export interface LocalPresenceIndex {
  /** The name this server goes by (its backplane name, or `local`). */
  readonly serverName: string;
  localConnection(connectionId: string): { connection: ManagedConnection; connectedAt: number } | undefined;
  localUserConnections(userId: string): Iterable<ManagedConnection>;
  localGroupMembers(groupName: string): Iterable<ManagedConnection>;
  localGroupsOf(connectionId: string): readonly string[];
  readonly connectionCount: number;
}

/** Presence from one manager's tables. */
export class LocalPresence implements HubPresence {
  readonly scope = 'local' as const;
  private readonly listeners: PresenceListeners;

  constructor(
    private readonly index: LocalPresenceIndex,
    onListenerError: (error: unknown) => void,
  ) {
    this.listeners = new PresenceListeners(onListenerError);
  }

  /** Tells local listeners of a change on this server. */
  emit(type: PresenceEventType, connection: ManagedConnection, group?: string): void {
    if (!this.listeners.any) return;
    const event: PresenceEvent = {
      type,
      connectionId: connection.connectionId,
      ...(connection.userIdentifier !== undefined &&
        connection.userIdentifier !== '' && { userId: connection.userIdentifier }),
      serverName: this.index.serverName,
      ...(group !== undefined && { group }),
    };
    this.listeners.emit(event);
  }

  async connection(connectionId: string): Promise<PresenceConnection | undefined> {
    const found = this.index.localConnection(connectionId);
    return found === undefined ? undefined : this.describe(found.connection, found.connectedAt);
  }

  user(userId: string): UserPresence {
    return {
      connections: async () =>
        [...this.index.localUserConnections(userId)].map((connection) =>
          this.describe(connection, this.index.localConnection(connection.connectionId)?.connectedAt ?? 0),
        ),
    };
  }

  group(name: string): GroupPresence {
    return {
      connections: async (options: PresencePageOptions = {}): Promise<PresencePage> => {
        const limit = pageSize(options.limit);
        const after = decodeCursor(options.cursor);
        const ids = [...this.index.localGroupMembers(name)]
          .filter((connection) => after === undefined || connection.connectionId > after)
          .sort((a, b) => (a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0));
        const page = ids.slice(0, limit);
        return {
          connections: page.map((connection) => ({
            connectionId: connection.connectionId,
            ...(hasUser(connection) && { userId: connection.userIdentifier }),
          })),
          ...(ids.length > limit && { cursor: encodeCursor(page[page.length - 1].connectionId) }),
        };
      },
      count: async () => [...this.index.localGroupMembers(name)].length,
    };
  }

  async groupsOf(connectionId: string): Promise<readonly string[]> {
    return this.index.localGroupsOf(connectionId);
  }

  async servers(): Promise<readonly PresenceServer[]> {
    return [{ serverName: this.index.serverName, connections: this.index.connectionCount, lastHeartbeat: Date.now() }];
  }

  on(event: PresenceEventType, listener: PresenceListener): () => void {
    return this.listeners.add(event, listener);
  }

  private describe(connection: ManagedConnection, connectedAt: number): PresenceConnection {
    return {
      connectionId: connection.connectionId,
      ...(hasUser(connection) && { userId: connection.userIdentifier }),
      serverName: this.index.serverName,
      ...(connection.transport !== undefined && { transport: connection.transport }),
      ...(connection.protocol !== undefined && { protocol: connection.protocol }),
      connectedAt,
    };
  }
}

function hasUser(connection: ManagedConnection): connection is ManagedConnection & { userIdentifier: string } {
  return connection.userIdentifier !== undefined && connection.userIdentifier !== '';
}
