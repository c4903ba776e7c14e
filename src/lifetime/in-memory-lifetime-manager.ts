/**
 * The in-memory lifetime manager: the single-server default (ASP.NET Core's `DefaultHubLifetimeManager`).
 *
 * State it owns: the connections of this server by id, group membership (group → connections, and each
 * connection's groups for cleanup), and connections by user id. Group names are case-sensitive, as in .NET's
 * default manager. Every send serializes the message at most once per protocol and writes the same bytes to
 * each target; nothing here waits on a client.
 */
import { MessageType } from '../../protocol/messages';
import { ClientResultErrors, HubException } from '../shared/errors';
import {
  checkGroupRoom,
  ClientResultsManager,
  ConnectionIOError,
  DEFAULT_LIFETIME_LIMITS,
  type LifetimeLimits,
} from './client-results';
import { LocalPresence, type LocalPresenceIndex } from './local-presence';
import type { HubLifetimeManager, ManagedConnection } from './hub-lifetime-manager';
import { SerializedHubMessage } from './serialized-message';

function invocation(method: string, args: readonly unknown[]): SerializedHubMessage {
  return new SerializedHubMessage({ type: MessageType.Invocation, target: method, arguments: args as unknown[] });
}

/** Keeps connections, groups and users of one hub on this server and delivers to them directly. */
export class InMemoryLifetimeManager implements HubLifetimeManager, LocalPresenceIndex {
  readonly serverName = 'local';
  /** Presence of this server's connections (there are no others). */
  readonly presence: LocalPresence;
  private readonly connections = new Map<string, ManagedConnection>();
  private readonly connectedAt = new Map<string, number>();
  private readonly groups = new Map<string, Set<ManagedConnection>>();
  private readonly groupsOfConnection = new Map<string, Set<string>>();
  private readonly users = new Map<string, Set<ManagedConnection>>();
  private readonly clientResults: ClientResultsManager;
  private lastInvocationId = 0;

  /** @param limits pending client results and groups per connection */
  constructor(private readonly limits: LifetimeLimits = DEFAULT_LIFETIME_LIMITS) {
    this.clientResults = new ClientResultsManager(limits.clientResults);
    this.presence = new LocalPresence(this, () => undefined);
  }

  localConnection(connectionId: string): { connection: ManagedConnection; connectedAt: number } | undefined {
    const connection = this.connections.get(connectionId);
    return connection === undefined ? undefined : { connection, connectedAt: this.connectedAt.get(connectionId) ?? 0 };
  }

  localUserConnections(userId: string): Iterable<ManagedConnection> {
    return this.users.get(userId) ?? [];
  }

  localGroupMembers(groupName: string): Iterable<ManagedConnection> {
    return this.groups.get(groupName) ?? [];
  }

  /** Connections currently registered. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The groups a connection of this server is in (for the management API's checks). */
  localGroupsOf(connectionId: string): readonly string[] {
    return [...(this.groupsOfConnection.get(connectionId) ?? [])];
  }

  /** Whether a group has a member on this server. */
  hasLocalMembers(groupName: string): boolean {
    return (this.groups.get(groupName)?.size ?? 0) > 0;
  }

  async onConnected(connection: ManagedConnection): Promise<void> {
    this.connections.set(connection.connectionId, connection);
    this.connectedAt.set(connection.connectionId, Date.now());
    const user = connection.userIdentifier;
    if (user !== undefined) {
      let set = this.users.get(user);
      if (set === undefined) this.users.set(user, (set = new Set()));
      set.add(connection);
    }
    this.presence.emit('connected', connection);
  }

  async onDisconnected(connection: ManagedConnection): Promise<void> {
    const id = connection.connectionId;
    this.connections.delete(id);
    this.connectedAt.delete(id);
    const groups = this.groupsOfConnection.get(id);
    if (groups !== undefined) {
      for (const group of groups) this.leave(group, connection);
      for (const group of groups) this.presence.emit('left', connection, group);
      this.groupsOfConnection.delete(id);
    }
    const user = connection.userIdentifier;
    if (user !== undefined) {
      const set = this.users.get(user);
      set?.delete(connection);
      if (set?.size === 0) this.users.delete(user);
    }
    this.clientResults.failConnection(id);
    this.presence.emit('disconnected', connection);
  }

  async sendAll(method: string, args: readonly unknown[]): Promise<void> {
    const message = invocation(method, args);
    for (const connection of this.connections.values()) connection.write(message);
  }

  async sendAllExcept(method: string, args: readonly unknown[], excluded: readonly string[]): Promise<void> {
    const message = invocation(method, args);
    for (const connection of this.connections.values()) {
      if (!excluded.includes(connection.connectionId)) connection.write(message);
    }
  }

  async sendConnection(connectionId: string, method: string, args: readonly unknown[]): Promise<void> {
    this.connections.get(connectionId)?.write(invocation(method, args));
  }

  async sendConnections(connectionIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    let message: SerializedHubMessage | undefined;
    // A connection listed twice gets the message once: .NET filters its connections by the list.
    for (const id of new Set(connectionIds)) {
      const connection = this.connections.get(id);
      if (connection !== undefined) connection.write((message ??= invocation(method, args)));
    }
  }

  async sendGroup(groupName: string, method: string, args: readonly unknown[]): Promise<void> {
    const members = this.groups.get(groupName);
    if (members === undefined) return;
    const message = invocation(method, args);
    for (const connection of members) connection.write(message);
  }

  async sendGroups(groupNames: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    let message: SerializedHubMessage | undefined;
    // A connection in several of the groups gets the message once per group, as in .NET.
    for (const name of groupNames) {
      const members = this.groups.get(name);
      if (members === undefined) continue;
      message ??= invocation(method, args);
      for (const connection of members) connection.write(message);
    }
  }

  async sendGroupExcept(
    groupName: string,
    method: string,
    args: readonly unknown[],
    excluded: readonly string[],
  ): Promise<void> {
    const members = this.groups.get(groupName);
    if (members === undefined) return;
    const message = invocation(method, args);
    for (const connection of members) {
      if (!excluded.includes(connection.connectionId)) connection.write(message);
    }
  }

  async sendUser(userId: string, method: string, args: readonly unknown[]): Promise<void> {
    const connections = this.users.get(userId);
    if (connections === undefined) return;
    const message = invocation(method, args);
    for (const connection of connections) connection.write(message);
  }

  async sendUsers(userIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    let message: SerializedHubMessage | undefined;
    // A user listed twice gets the message once per connection: .NET filters its connections by the list.
    for (const userId of new Set(userIds)) {
      const connections = this.users.get(userId);
      if (connections === undefined) continue;
      message ??= invocation(method, args);
      for (const connection of connections) connection.write(message);
    }
  }

  async addToGroup(connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId);
    // .NET's default manager ignores ids it does not know.
    if (connection === undefined) return;
    checkGroupRoom(
      connectionId,
      this.groupsOfConnection.get(connectionId),
      groupName,
      this.limits.maximumGroupsPerConnection,
    );
    let members = this.groups.get(groupName);
    if (members === undefined) this.groups.set(groupName, (members = new Set()));
    if (members.has(connection)) return;
    members.add(connection);
    let names = this.groupsOfConnection.get(connectionId);
    if (names === undefined) this.groupsOfConnection.set(connectionId, (names = new Set()));
    names.add(groupName);
    this.presence.emit('joined', connection, groupName);
  }

  async removeFromGroup(connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId);
    if (connection === undefined) return;
    this.leave(groupName, connection);
    if (this.groupsOfConnection.get(connectionId)?.delete(groupName) === true)
      this.presence.emit('left', connection, groupName);
  }

  async invokeConnection(
    connectionId: string,
    method: string,
    args: readonly unknown[],
    signal?: AbortSignal,
  ): Promise<unknown> {
    const connection = this.connections.get(connectionId);
    if (connection === undefined) throw new ConnectionIOError(ClientResultErrors.connectionDoesNotExist(connectionId));
    // A wait that is over before it starts is not worth a message the client would answer in vain.
    if (signal?.aborted) throw new HubException(ClientResultErrors.canceled);
    // The in-memory manager's ids are `s<counter>` (src/SignalR/server/Core/src/DefaultHubLifetimeManager.cs@v10.0.0
    // L345-L348).
    const invocationId = `s${++this.lastInvocationId}`;
    const result = this.clientResults.add(connectionId, invocationId, signal);
    connection.write(
      new SerializedHubMessage({
        type: MessageType.Invocation,
        invocationId,
        target: method,
        arguments: args as unknown[],
      }),
    );
    return result;
  }

  setConnectionResult(
    connectionId: string,
    completion: Parameters<HubLifetimeManager['setConnectionResult']>[1],
  ): boolean {
    return this.clientResults.complete(connectionId, completion);
  }

  async close(): Promise<void> {
    for (const id of this.connections.keys()) this.clientResults.failConnection(id);
  }

  private leave(groupName: string, connection: ManagedConnection): void {
    const members = this.groups.get(groupName);
    if (members === undefined) return;
    members.delete(connection);
    if (members.size === 0) this.groups.delete(groupName);
  }
}
