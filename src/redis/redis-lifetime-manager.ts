// Over 600 lines: it mirrors .NET's RedisHubLifetimeManager, one class whose send, receive and group paths share the subscriptions it keeps.
/**
 * The Redis lifetime manager: ASP.NET Core's `RedisHubLifetimeManager<THub>`, with the same channels, payload
 * bytes and routing, so Node and .NET servers of one hub share one Redis and cannot tell each other apart.
 *
 * Spec: docs/protocol.md §3 (all of it) and §4. Routing (docs/protocol.md §3.5): sends to all, groups and users go only
 * through Redis, and every server — the sender too — delivers to its own clients when the message comes back; a send to
 * one connection of this server skips Redis; a group change for a connection of another server is a group command
 * answered by an ack (docs/protocol.md §3.6); a client result from a connection of another server comes back on this
 * server's return channel (docs/protocol.md §3.7). Subscriptions (docs/protocol.md §3.4): the four server channels at
 * start, a connection's channel while it is connected, a group's or user's channel while at least one local connection
 * is in it.
 *
 * State this manager owns: the connections of this server by id, local group members and user connections, the
 * group commands waiting for an ack, and the client results in flight in both directions.
 *
 * Redis trouble never fails a send (docs/protocol.md §3.8 is .NET's behaviour; here the manager is kinder): while the
 * bus does not receive, messages are delivered to this server's own clients directly, the publish waits in the bus's
 * queue and goes to the other servers once Redis is back (the bus skips its echo here), and a send resolves once it
 * is queued. Operations that need another server — a group change for a remote connection, a client result from a
 * remote connection — wait for Redis within their own timeouts (the ack timeout, the call's signal).
 *
 * Hot path: a send is serialized once per hub protocol and published once per channel; a received message is
 * decoded once and its bytes are written to every local target without re-encoding, never waiting on a client.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { HubProtocol } from '../../protocol/hub-protocol';
import { MessageType, type CompletionMessage, type HubMessage, type InvocationMessage } from '../../protocol/messages';
import {
  RedisChannels,
  RedisGroupAction,
  createServerName,
  decodeRedisCompletion,
  decodeRedisGroupCommand,
  decodeRedisInvocation,
  encodeRedisAck,
  encodeRedisCompletion,
  encodeRedisGroupCommand,
  encodeRedisInvocation,
  type RedisInvocation,
  type SerializedHubMessages,
} from '../../protocol/redis';
import {
  BackplaneErrors,
  ClientResultErrors,
  HubException,
  namedError,
  userGroupsNeedPresence,
} from '../shared/errors';
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneLogger,
  type ChannelListener,
} from '../lifetime/backplane-bus';
import {
  checkGroupRoom,
  ClientResultsManager,
  ConnectionIOError,
  DEFAULT_LIFETIME_LIMITS,
  type LifetimeLimits,
} from '../lifetime/client-results';
import type { HubLifetimeManager, ManagedConnection } from '../lifetime/hub-lifetime-manager';
import { SerializedHubMessage } from '../lifetime/serialized-message';
import { LocalPresence, type LocalPresenceIndex } from '../lifetime/local-presence';
import type { HubPresence } from '../lifetime/presence';
import { RedisPresence, type PresenceHost } from './redis-presence';
import { GroupCommandAcks } from './group-command-acks';

/** Options of {@link RedisLifetimeManager}. */
export interface RedisLifetimeManagerOptions {
  /** The pub/sub connection, shared by every hub of the server. */
  readonly bus: BackplaneBus;
  /** The hub's backplane name: the .NET hub's full type name to share its channels (docs/protocol.md §3.1). */
  readonly hubName: string;
  /** StackExchange.Redis `ChannelPrefix` of the .NET servers on the same Redis (docs/protocol.md §3.2). @default '' */
  readonly channelPrefix?: string;
  /**
   * Every hub protocol an invocation is published in, in this order (.NET's order is `json`, `messagepack`). A
   * .NET server aborts a connection whose protocol a payload lacks (docs/protocol.md §3.3), so this lists every
   * protocol any server's clients may use. The same protocols read client-result replies and convert payloads that lack
   * one.
   */
  readonly protocols: readonly HubProtocol[];
  /**
   * How long a group change for a connection of another server waits for the owning server's ack before it fails
   * (.NET: 30 s, checked every 5 s, so 30–35 s; docs/protocol.md §3.6).
   * @default 30000
   */
  readonly ackTimeoutMs?: number;
  /**
   * This server's name in channel names and payloads. @default `{hostname}_{32 hex digits}` as .NET
   * (docs/protocol.md §3.1)
   */
  readonly serverName?: string;
  readonly log: BackplaneLogger;
  /**
   * Pending client results and groups per connection.
   * @default {@link DEFAULT_LIFETIME_LIMITS}
   */
  readonly limits?: LifetimeLimits;
  /**
   * Presence across every server, stored in Redis (docs/protocol.md §3.9); without it presence answers for this
   * server only.
   * @default off
   */
  readonly presence?: { readonly heartbeatIntervalMs?: number };
}

/**
 * A client-result invocation another server made of one of our connections, waiting for its answer
 * (docs/protocol.md §3.7).
 */
interface RelayedInvocation {
  readonly connection: ManagedConnection;
  /** The return channel name from the payload, unprefixed. */
  readonly returnChannel: string;
}

/** How long a group change for a connection of another server waits for its ack: .NET's 30 s (docs/protocol.md §3.6). */
export const DEFAULT_GROUP_ACK_TIMEOUT_MS = 30_000;

const NO_IDS: readonly string[] = Object.freeze([]);

/**
 * Local members of the channels of one kind (groups or users), with the channel subscribed while at least one
 * member is here (.NET's `RedisSubscriptionManager`). Joining waits for the subscription, so a message published
 * right after a join reaches the new member.
 */
class ChannelMembers {
  private readonly entries = new Map<string, { members: Set<ManagedConnection>; subscribed: Promise<void> }>();

  constructor(
    private readonly subscribe: (name: string) => Promise<void>,
    private readonly unsubscribe: (name: string) => Promise<void>,
  ) {}

  members(name: string): ReadonlySet<ManagedConnection> | undefined {
    return this.entries.get(name)?.members;
  }

  add(name: string, connection: ManagedConnection): Promise<void> {
    let entry = this.entries.get(name);
    if (entry === undefined) {
      entry = { members: new Set(), subscribed: this.subscribe(name) };
      this.entries.set(name, entry);
    }
    entry.members.add(connection);
    return entry.subscribed;
  }

  async remove(name: string, connection: ManagedConnection): Promise<void> {
    const entry = this.entries.get(name);
    if (entry === undefined || !entry.members.delete(connection) || entry.members.size > 0) return;
    this.entries.delete(name);
    await this.unsubscribe(name);
  }
}

/** Reads the first message of framed bytes with `protocol`; null when there is none or it is invalid. */
function readFramed(protocol: HubProtocol, bytes: Uint8Array): HubMessage | null {
  let message: HubMessage | null = null;
  protocol.createReader({ maximumMessageSize: null }).push(bytes, (parsed) => {
    message ??= parsed;
  });
  return message;
}

/**
 * A client-result invocation id as .NET's Redis manager makes them: 16 random bytes, standard Base64 without padding
 * (docs/protocol.md §2.6).
 */
function newInvocationId(): string {
  return randomBytes(16).toString('base64').slice(0, 22);
}

/** Delivers a hub's messages across servers through Redis, byte-compatible with ASP.NET Core's backplane. */
export class RedisLifetimeManager implements HubLifetimeManager, LocalPresenceIndex, PresenceHost {
  /** This server's name (in ack and return channels, and in group commands). */
  readonly serverName: string;
  /** The hub's channels on this server. */
  readonly channels: RedisChannels;

  private readonly bus: BackplaneBus;
  private readonly log: BackplaneLogger;
  private readonly protocols: readonly HubProtocol[];
  private readonly ackTimeoutMs: number;

  private readonly connections = new Map<string, ManagedConnection>();
  private readonly connectedAt = new Map<string, number>();
  /** Presence of the fleet (with the `presence` option) or of this server. */
  readonly presence: HubPresence;
  /** The fleet's presence, when on. */
  readonly fleetPresence: RedisPresence | undefined;
  private readonly localPresence: LocalPresence | undefined;
  private readonly groupsOfConnection = new Map<string, Set<string>>();
  private readonly groups: ChannelMembers;
  private readonly users: ChannelMembers;
  /** Wire channel → its handler, for every channel this manager subscribed (also used for direct delivery). */
  private readonly handlers = new Map<string, ChannelListener>();
  private readonly clientResults: ClientResultsManager;
  private readonly maximumGroupsPerConnection: number | null;
  private readonly relayed = new Map<string, RelayedInvocation>();
  /** The ids in `relayed` by connection, so a disconnect costs what that connection owes. */
  private readonly relayedOf = new Map<ManagedConnection, Set<string>>();
  /** Our group commands waiting for the owning server's ack. */
  private readonly acks: GroupCommandAcks;
  private readonly convertedProtocols = new Set<string>();
  private closed = false;
  /** Resolves once the four server channels are subscribed (or recorded, while Redis is down). */
  readonly started: Promise<void>;

  constructor(options: RedisLifetimeManagerOptions) {
    if (options.protocols.length === 0) throw new TypeError('The Redis lifetime manager needs at least one protocol.');
    this.bus = options.bus;
    this.log = options.log;
    this.protocols = options.protocols;
    this.ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_GROUP_ACK_TIMEOUT_MS;
    this.acks = new GroupCommandAcks({
      timeoutMs: this.ackTimeoutMs,
      holdsProcess: false,
      log: this.log,
      timeoutError: ({ id, connectionId, groupName, action }) => {
        this.log.warn(
          { commandId: id, connectionId, groupName, action, timeoutMs: this.ackTimeoutMs },
          'no server acknowledged a group command: no server owns that connection, or Redis lost the message',
        );
        return namedError('TaskCanceledException', BackplaneErrors.ackTimeout, 'SIGNALR_ERR_GROUP_ACK_TIMEOUT');
      },
    });
    const limits = options.limits ?? DEFAULT_LIFETIME_LIMITS;
    this.clientResults = new ClientResultsManager(limits.clientResults);
    this.maximumGroupsPerConnection = limits.maximumGroupsPerConnection;
    this.serverName = options.serverName ?? createServerName(hostname());
    this.channels = new RedisChannels({
      hubName: options.hubName,
      serverName: this.serverName,
      channelPrefix: options.channelPrefix ?? '',
    });
    this.groups = new ChannelMembers(
      (name) => {
        const channel = this.channels.group(name);
        return this.listen(channel, (payload) => this.onGroupMessage(name, payload));
      },
      (name) => this.unlisten(this.channels.group(name)),
    );
    this.users = new ChannelMembers(
      (name) => {
        const channel = this.channels.user(name);
        return this.listen(channel, (payload) => this.onUserMessage(name, payload));
      },
      (name) => this.unlisten(this.channels.user(name)),
    );
    // In .NET's order (docs/protocol.md §3.4): all, internal:groups, internal:ack:{me}, internal:return:{me}.
    const channels = this.channels;
    this.started = Promise.all([
      this.listen(channels.all, (payload) => this.onAllMessage(payload)),
      this.listen(channels.groupManagement, (payload) => this.onGroupCommand(payload)),
      this.listen(channels.ack, (payload) => this.acks.onAck(payload)),
      this.listen(channels.returnResults, (payload) => this.onReturnedResult(payload)),
    ]).then(() => undefined);
    if (options.presence !== undefined) {
      this.fleetPresence = new RedisPresence({
        bus: this.bus,
        channelPrefix: options.channelPrefix ?? '',
        hubName: options.hubName,
        serversChannel: this.channels.groupManagement,
        ...(options.presence.heartbeatIntervalMs !== undefined && {
          heartbeatIntervalMs: options.presence.heartbeatIntervalMs,
        }),
        log: this.log,
      });
      this.presence = this.fleetPresence;
      this.started = Promise.all([this.started, this.fleetPresence.start(this)]).then(() => undefined);
    } else {
      this.localPresence = new LocalPresence(this, (error) =>
        this.log.error({ err: error }, 'a presence listener failed'),
      );
      this.presence = this.localPresence;
    }
  }

  localConnection(connectionId: string): { connection: ManagedConnection; connectedAt: number } | undefined {
    const connection = this.connections.get(connectionId);
    return connection === undefined ? undefined : { connection, connectedAt: this.connectedAt.get(connectionId) ?? 0 };
  }

  localUserConnections(userId: string): Iterable<ManagedConnection> {
    return this.users.members(userId) ?? [];
  }

  localGroupMembers(groupName: string): Iterable<ManagedConnection> {
    return this.groups.members(groupName) ?? [];
  }

  *localEntries(): Iterable<{ connection: ManagedConnection; connectedAt: number; groups: Iterable<string> }> {
    for (const [id, connection] of this.connections) {
      yield { connection, connectedAt: this.connectedAt.get(id) ?? 0, groups: this.groupsOfConnection.get(id) ?? [] };
    }
  }

  /**
   * Puts every current and future connection of `userId`, on any server, in `group` until removed or `ttlSeconds`
   * passed (Azure SignalR Service's user groups). Needs the `presence` option: the membership is kept in Redis.
   */
  async addUserToGroup(
    userId: string,
    groupName: string,
    options: { readonly ttlSeconds?: number } = {},
  ): Promise<void> {
    await this.requireFleet().addUserToGroup(userId, groupName, options.ttlSeconds);
  }

  /** Ends a user-level membership: every connection of the user, on any server, leaves the group. */
  async removeUserFromGroup(userId: string, groupName: string): Promise<void> {
    await this.requireFleet().removeUserFromGroup(userId, groupName);
  }

  /** Ends every user-level membership of a user. */
  async removeUserFromAllGroups(userId: string): Promise<void> {
    await this.requireFleet().removeUserFromAllGroups(userId);
  }

  private requireFleet(): RedisPresence {
    if (this.fleetPresence === undefined) {
      throw userGroupsNeedPresence();
    }
    return this.fleetPresence;
  }

  /** Connections of this server. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The groups a connection of this server is in (for the management API's checks). */
  localGroupsOf(connectionId: string): readonly string[] {
    return [...(this.groupsOfConnection.get(connectionId) ?? [])];
  }

  /** Whether a group has a member on this server (other servers' members are never known here). */
  hasLocalMembers(groupName: string): boolean {
    return (this.groups.members(groupName)?.size ?? 0) > 0;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Connections

  async onConnected(connection: ManagedConnection): Promise<void> {
    const id = connection.connectionId;
    this.connections.set(id, connection);
    const connectedAt = Date.now();
    this.connectedAt.set(id, connectedAt);
    const subscriptions = [
      this.listen(this.channels.connection(id), (payload) => this.onConnectionMessage(connection, payload)),
    ];
    // Connections without a user id subscribe no user channel
    // (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L104-L107).
    const user = connection.userIdentifier;
    if (user !== undefined && user !== '') subscriptions.push(this.users.add(user, connection));
    if (this.fleetPresence === undefined) {
      await Promise.all(subscriptions);
      this.localPresence?.emit('connected', connection);
      return;
    }
    const [userGroups] = await Promise.all([this.fleetPresence.connected(connection, connectedAt), ...subscriptions]);
    if (userGroups.length > 0 && this.connections.get(id) === connection)
      await this.fleetPresence.joinUserGroups(connection, userGroups);
  }

  async onDisconnected(connection: ManagedConnection): Promise<void> {
    const id = connection.connectionId;
    if (this.connections.get(id) === connection) {
      this.connections.delete(id);
      this.connectedAt.delete(id);
    }
    // Local clean-up only: no group commands are published for a leaving connection (docs/protocol.md §3.4).
    const tasks = [this.unlisten(this.channels.connection(id))];
    const names = this.groupsOfConnection.get(id);
    if (names !== undefined) {
      this.groupsOfConnection.delete(id);
      for (const name of names) tasks.push(this.groups.remove(name, connection));
    }
    if (this.fleetPresence !== undefined) tasks.push(this.fleetPresence.disconnected(connection, names ?? []));
    else {
      for (const name of names ?? []) this.localPresence?.emit('left', connection, name);
      this.localPresence?.emit('disconnected', connection);
    }
    const user = connection.userIdentifier;
    if (user !== undefined && user !== '') tasks.push(this.users.remove(user, connection));
    this.clientResults.failConnection(id);
    // Client results other servers wait for from this connection: tell them it left
    // (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L570-L574).
    const owed = this.relayedOf.get(connection);
    this.relayedOf.delete(connection);
    for (const invocationId of owed ?? []) {
      const relayed = this.relayed.get(invocationId);
      if (relayed === undefined) continue;
      this.relayed.delete(invocationId);
      this.relayResult(relayed, {
        type: MessageType.Completion,
        invocationId,
        error: BackplaneErrors.connectionDisconnected,
      });
    }
    await Promise.all(tasks);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Sends (docs/protocol.md §3.5)

  async sendAll(method: string, args: readonly unknown[]): Promise<void> {
    await this.publish(this.channels.all, this.invocationPayload(method, args, NO_IDS));
  }

  async sendAllExcept(
    method: string,
    args: readonly unknown[],
    excludedConnectionIds: readonly string[],
  ): Promise<void> {
    await this.publish(this.channels.all, this.invocationPayload(method, args, excludedConnectionIds));
  }

  async sendConnection(connectionId: string, method: string, args: readonly unknown[]): Promise<void> {
    // A connection of this server gets the message directly, without Redis
    // (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0, SendConnectionAsync).
    const connection = this.connections.get(connectionId);
    if (connection !== undefined) {
      connection.write(new SerializedHubMessage(this.invocation(method, args)));
      return;
    }
    await this.publish(this.channels.connection(connectionId), this.invocationPayload(method, args, NO_IDS));
  }

  async sendConnections(connectionIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    // One publish per id, local ones included, as .NET does.
    if (connectionIds.length === 0) return;
    const payload = this.invocationPayload(method, args, NO_IDS);
    await Promise.all(connectionIds.map((id) => this.publish(this.channels.connection(id), payload)));
  }

  async sendGroup(groupName: string, method: string, args: readonly unknown[]): Promise<void> {
    await this.publish(this.channels.group(groupName), this.invocationPayload(method, args, NO_IDS));
  }

  async sendGroups(groupNames: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    const names = groupNames.filter((name) => name !== '');
    if (names.length === 0) return;
    const payload = this.invocationPayload(method, args, NO_IDS);
    await Promise.all(names.map((name) => this.publish(this.channels.group(name), payload)));
  }

  async sendGroupExcept(
    groupName: string,
    method: string,
    args: readonly unknown[],
    excludedConnectionIds: readonly string[],
  ): Promise<void> {
    await this.publish(this.channels.group(groupName), this.invocationPayload(method, args, excludedConnectionIds));
  }

  async sendUser(userId: string, method: string, args: readonly unknown[]): Promise<void> {
    await this.publish(this.channels.user(userId), this.invocationPayload(method, args, NO_IDS));
  }

  async sendUsers(userIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    const ids = userIds.filter((id) => id !== '');
    if (ids.length === 0) return;
    const payload = this.invocationPayload(method, args, NO_IDS);
    await Promise.all(ids.map((id) => this.publish(this.channels.user(id), payload)));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Groups (docs/protocol.md §3.4, §3.6)

  async addToGroup(connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId);
    if (connection !== undefined) return this.joinLocally(connection, groupName);
    return this.sendGroupCommand(connectionId, groupName, RedisGroupAction.Add);
  }

  async removeFromGroup(connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId);
    if (connection !== undefined) return this.leaveLocally(connection, groupName);
    return this.sendGroupCommand(connectionId, groupName, RedisGroupAction.Remove);
  }

  /** Joins a connection of this server to a group: the group's channel subscribed, and presence told. */
  async joinLocally(connection: ManagedConnection, groupName: string): Promise<void> {
    const id = connection.connectionId;
    checkGroupRoom(id, this.groupsOfConnection.get(id), groupName, this.maximumGroupsPerConnection);
    let names = this.groupsOfConnection.get(id);
    if (names === undefined) this.groupsOfConnection.set(id, (names = new Set()));
    const joining = !names.has(groupName);
    names.add(groupName);
    if (!joining) return this.groups.add(groupName, connection);
    if (this.fleetPresence === undefined) {
      await this.groups.add(groupName, connection);
      this.localPresence?.emit('joined', connection, groupName);
      return;
    }
    await Promise.all([this.groups.add(groupName, connection), this.fleetPresence.joined(connection, groupName)]);
  }

  async leaveLocally(connection: ManagedConnection, groupName: string): Promise<void> {
    const leaving = this.groupsOfConnection.get(connection.connectionId)?.delete(groupName) === true;
    if (!leaving) return this.groups.remove(groupName, connection);
    if (this.fleetPresence === undefined) {
      await this.groups.remove(groupName, connection);
      this.localPresence?.emit('left', connection, groupName);
      return;
    }
    await Promise.all([this.groups.remove(groupName, connection), this.fleetPresence.left(connection, groupName)]);
  }

  /**
   * Asks the server owning `connectionId` to add it to or remove it from a group, and waits for its ack
   * (docs/protocol.md §3.6). Every server receives the command; only the owner acts and acks. Nobody acks a command for
   * an unknown id, so it fails after `ackTimeoutMs`.
   */
  private sendGroupCommand(connectionId: string, groupName: string, action: RedisGroupAction): Promise<void> {
    // The ack timeout also bounds the wait for Redis: a command still queued when it passes is withdrawn, never
    // sent late after its caller got the error.
    return this.acks.send({ connectionId, groupName, action }, (id, withdraw) =>
      this.bus.publish(
        this.channels.groupManagement,
        encodeRedisGroupCommand({ id, serverName: this.serverName, action, groupName, connectionId }),
        { signal: withdraw },
      ),
    );
  }

  // ------------------------------------------------------------------------------------------------------------
  // Client results (docs/protocol.md §3.7)

  async invokeConnection(
    connectionId: string,
    method: string,
    args: readonly unknown[],
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (signal?.aborted) throw new HubException(ClientResultErrors.canceled);
    const invocationId = newInvocationId();
    const connection = this.connections.get(connectionId);
    const result = this.clientResults.add(connectionId, invocationId, signal);
    if (connection !== undefined) {
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
    const payload = this.invocationPayload(method, args, NO_IDS, invocationId, this.channels.returnResultsName);
    let receivers: number;
    try {
      // While Redis is down the invocation waits for it, until `signal` gives up (the call's own timeout).
      receivers = await this.bus.publish(
        this.channels.connection(connectionId),
        payload,
        signal !== undefined ? { signal } : {},
      );
    } catch (error) {
      // Canceled while queued: the wait already failed with "Invocation canceled by the server.".
      if (signal?.aborted) return result;
      this.clientResults.remove(invocationId);
      throw error;
    }
    // Nobody subscribed the connection's channel: no server owns it
    // (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L380-L434). A Redis Cluster counts
    // only the subscribers of one node, so there a zero proves nothing and the call waits for its answer (or its
    // cancellation) instead.
    if (receivers < 1 && this.bus.publishCountsEveryReceiver) {
      this.clientResults.remove(invocationId);
      throw new ConnectionIOError(ClientResultErrors.connectionDoesNotExist(connectionId));
    }
    return result;
  }

  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean {
    if (this.clientResults.has(completion.invocationId)) return this.clientResults.complete(connectionId, completion);
    const relayed = this.relayed.get(completion.invocationId);
    if (relayed === undefined) return false;
    if (relayed.connection.connectionId !== connectionId) {
      throw new Error(ClientResultErrors.wrongConnection(connectionId, completion.invocationId));
    }
    this.relayed.delete(completion.invocationId);
    this.relayedOf.get(relayed.connection)?.delete(completion.invocationId);
    this.relayResult(relayed, completion);
    return true;
  }

  /**
   * Publishes a client's Completion to the server that invoked it: `[protocol, completion framed in the
   * connection's protocol]` on the invocation's return channel, with our channel prefix (docs/protocol.md §3.2, §3.7).
   */
  private relayResult(relayed: RelayedInvocation, completion: CompletionMessage): void {
    const protocol = this.protocolOf(relayed.connection);
    const payload = encodeRedisCompletion({
      protocolName: protocol.name,
      completion: protocol.writeMessage(completion),
    });
    this.bus.publish(this.channels.toWire(relayed.returnChannel), payload).catch((error: unknown) => {
      this.log.warn(
        { err: error, invocationId: completion.invocationId },
        'a client result for another server could not be published',
      );
    });
  }

  // ------------------------------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.acks.failAll(() => new BackplaneUnavailableError(BackplaneErrors.shuttingDown));
    this.clientResults.failAll();
    await this.fleetPresence?.close();
    await Promise.all([...this.handlers.keys()].map((channel) => this.unlisten(channel)));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Receiving (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L449-L710)

  private onAllMessage(payload: Buffer): void {
    const invocation = this.readInvocation(payload, 'all');
    if (invocation === undefined) return;
    const message = this.toMessage(invocation);
    const excluded = invocation.excludedConnectionIds;
    for (const connection of this.connections.values()) {
      if (excluded.length === 0 || !excluded.includes(connection.connectionId)) this.write(connection, message);
    }
  }

  private onGroupMessage(groupName: string, payload: Buffer): void {
    const members = this.groups.members(groupName);
    if (members === undefined) return;
    const invocation = this.readInvocation(payload, 'group');
    if (invocation === undefined) return;
    const message = this.toMessage(invocation);
    const excluded = invocation.excludedConnectionIds;
    for (const connection of members) {
      if (excluded.length === 0 || !excluded.includes(connection.connectionId)) this.write(connection, message);
    }
  }

  private onUserMessage(userId: string, payload: Buffer): void {
    const connections = this.users.members(userId);
    if (connections === undefined) return;
    const invocation = this.readInvocation(payload, 'user');
    if (invocation === undefined) return;
    // Excluded ids are not applied to user sends, as in .NET (docs/protocol.md §3.5).
    const message = this.toMessage(invocation);
    for (const connection of connections) this.write(connection, message);
  }

  private onConnectionMessage(connection: ManagedConnection, payload: Buffer): void {
    const invocation = this.readInvocation(payload, 'connection');
    if (invocation === undefined) return;
    const { invocationId, returnChannel } = invocation;
    const gone = this.connections.get(connection.connectionId) !== connection;
    if (invocationId !== undefined && invocationId !== '' && returnChannel !== undefined && returnChannel !== '') {
      // Another server waits for this client's answer on its return channel.
      const relayed = { connection, returnChannel };
      if (gone) {
        this.relayResult(relayed, {
          type: MessageType.Completion,
          invocationId,
          error: BackplaneErrors.connectionDisconnected,
        });
        return;
      }
      this.relayed.set(invocationId, relayed);
      let owed = this.relayedOf.get(connection);
      if (owed === undefined) this.relayedOf.set(connection, (owed = new Set()));
      owed.add(invocationId);
    }
    if (!gone) this.write(connection, this.toMessage(invocation));
  }

  /** A group command: the owner of the connection performs it, then acks to the sender (docs/protocol.md §3.6). */
  private onGroupCommand(payload: Buffer): void {
    let command;
    try {
      command = decodeRedisGroupCommand(payload);
    } catch (error) {
      this.log.warn({ err: error }, 'invalid group command from Redis');
      return;
    }
    const connection = this.connections.get(command.connectionId);
    if (connection === undefined) return;
    const { id, serverName, action, groupName } = command;
    void (async () => {
      try {
        if (action === RedisGroupAction.Remove) await this.leaveLocally(connection, groupName);
        else if (action === RedisGroupAction.Add) await this.joinLocally(connection, groupName);
        // The group channel is subscribed before the ack goes out, so the sender's next send reaches the member.
        await this.bus.publish(this.channels.ackOf(serverName), encodeRedisAck(id));
      } catch (error) {
        this.log.warn({ err: error, commandId: id, serverName }, 'a group command could not be acknowledged');
      }
    })();
  }

  /** A client's answer relayed by the server that owns the client (docs/protocol.md §3.7). */
  private onReturnedResult(payload: Buffer): void {
    let reply;
    try {
      reply = decodeRedisCompletion(payload);
    } catch (error) {
      this.log.warn({ err: error }, 'invalid client result from Redis');
      return;
    }
    const protocol = this.protocols.find((candidate) => candidate.name === reply.protocolName);
    if (protocol === undefined) {
      // .NET: servers with different protocols registered (RedisLog.MismatchedServers).
      this.log.warn({ protocol: reply.protocolName }, 'a client result came in a protocol this server does not speak');
      return;
    }
    let completion: HubMessage | null;
    try {
      completion = readFramed(protocol, reply.completion);
    } catch (error) {
      this.log.warn({ err: error, protocol: protocol.name }, 'a relayed client result could not be read');
      return;
    }
    if (completion?.type !== MessageType.Completion) {
      this.log.warn({ protocol: protocol.name }, 'a relayed client result is not a Completion');
      return;
    }
    this.clientResults.completeRelayed(completion);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Helpers

  private invocation(method: string, args: readonly unknown[], invocationId?: string): InvocationMessage {
    return invocationId === undefined
      ? { type: MessageType.Invocation, target: method, arguments: args as unknown[] }
      : { type: MessageType.Invocation, invocationId, target: method, arguments: args as unknown[] };
  }

  /** The Redis invocation payload: the message framed once in every protocol (docs/protocol.md §3.3). */
  private invocationPayload(
    method: string,
    args: readonly unknown[],
    excludedConnectionIds: readonly string[],
    invocationId?: string,
    returnChannel?: string,
  ): Buffer {
    const message = this.invocation(method, args, invocationId);
    const messages = new Map<string, Uint8Array>();
    for (const protocol of this.protocols) messages.set(protocol.name, protocol.writeMessage(message));
    return encodeRedisInvocation({
      excludedConnectionIds,
      messages,
      ...(invocationId !== undefined && { invocationId, returnChannel }),
    });
  }

  /**
   * Publishes; when this server's subscription to the channel is not in place (Redis down, or not subscribed
   * again yet), also delivers to this server's own clients directly, since the subscription would not. Never
   * rejects: a failed publish is counted and logged by the bus.
   */
  private async publish(channel: string, payload: Buffer): Promise<void> {
    const handler = this.handlers.get(channel);
    const deliveredLocally = handler !== undefined && !this.bus.receives(channel);
    if (deliveredLocally) handler(payload);
    try {
      // Resolves once queued while Redis is down: a hub method must not hang for an outage (see the README).
      await this.bus.publish(channel, payload, { deliveredLocally, resolveWhenQueued: true });
    } catch (error) {
      if (this.bus.publishing) this.log.warn({ err: error, channel }, 'a message could not be published to Redis');
      else this.log.debug({ channel }, 'Redis is not connected: the message reached local clients only');
    }
  }

  private listen(channel: string, handler: ChannelListener): Promise<void> {
    this.handlers.set(channel, handler);
    return this.bus.subscribe(channel, handler);
  }

  private unlisten(channel: string): Promise<void> {
    this.handlers.delete(channel);
    return this.bus.unsubscribe(channel);
  }

  private readInvocation(payload: Buffer, kind: string): RedisInvocation | undefined {
    try {
      return decodeRedisInvocation(payload);
    } catch (error) {
      this.log.warn({ err: error, channel: kind }, 'invalid invocation from Redis');
      return undefined;
    }
  }

  /**
   * The received bytes as a message for our connections: each connection gets the bytes of its protocol as they
   * came. Beyond .NET: a connection whose protocol the payload lacks (a JSON-only .NET server publishes only
   * `json`) gets the message converted from a protocol the payload has, instead of being aborted.
   */
  private toMessage(invocation: RedisInvocation): SerializedHubMessage {
    const messages = invocation.messages;
    return new SerializedHubMessage(null, messages, () => this.convert(messages));
  }

  private convert(messages: SerializedHubMessages): HubMessage | null {
    for (const protocol of this.protocols) {
      const bytes = messages.get(protocol.name);
      if (bytes === undefined) continue;
      try {
        const message = readFramed(protocol, bytes);
        if (message !== null) {
          this.noteConversion(protocol.name, messages);
          return message;
        }
      } catch (error) {
        this.log.warn({ err: error, protocol: protocol.name }, 'a message from Redis could not be read for conversion');
      }
    }
    return null;
  }

  private noteConversion(from: string, messages: SerializedHubMessages): void {
    const key = `${from}>${[...messages.keys()].join(',')}`;
    if (this.convertedProtocols.has(key)) return;
    this.convertedProtocols.add(key);
    this.log.info(
      { from, present: [...messages.keys()] },
      'messages from another server lack some hub protocols; converting them for the connections that use those',
    );
  }

  private protocolOf(connection: ManagedConnection): HubProtocol {
    const name = connection.protocol;
    return this.protocols.find((protocol) => protocol.name === name) ?? this.protocols[0];
  }

  /** Writes to one connection; one failing connection never stops a fan-out. */
  private write(connection: ManagedConnection, message: SerializedHubMessage): void {
    try {
      connection.write(message);
    } catch (error) {
      this.log.error({ err: error, connectionId: connection.connectionId }, 'writing to a connection failed');
    }
  }
}
