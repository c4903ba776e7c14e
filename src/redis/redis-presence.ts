// Over 600 lines: one store whose heartbeat, repair, events and listings share the same Redis keys and scripts.
/**
 * Presence across every server (`scope: 'fleet'`), stored in the backplane's Redis under a namespace of ours that
 * .NET servers never touch (docs/protocol.md §3.9):
 *
 * - `{prefix}{hub}:presence:servers` — sorted set, each live server by its last heartbeat (ms);
 * - `…:server:{server}` — set, that server's connection ids;
 * - `…:c:{connection}` — hash: `u` user, `s` server, `t` transport, `p` protocol, `at` connected-at;
 * - `…:cg:{connection}` — set, the connection's groups;
 * - `…:g:{group}` — sorted set, the group's connection ids (all scored 0, so pages go in id order, by cursor);
 * - `…:u:{user}` — set, the user's connection ids;
 * - `…:ug:{user}` — sorted set, the user's user-level groups by expiry (ms; `+inf` for none);
 * - channel `…:events` — JSON events (connected, disconnected, joined, left), published while some server listens;
 * - channel `…:commands` — JSON user-level group changes, and a server's notice that it listens to events.
 *
 * Each connect, disconnect, join and leave is one pipeline (one round trip), its event included. Each server writes
 * a heartbeat; a server whose heartbeat is older than three intervals is dead: listings skip its connections at once,
 * and the next survivor's heartbeat removes its entries (a script, 1,000 connections per run, with their
 * `disconnected` events). A
 * heartbeat that finds its own server missing (Redis restarted, or this server was taken for dead) writes everything
 * this server holds again. No KEYS and no SCAN: every read starts from a known key.
 *
 * Redis Cluster is not supported (the keys of one change span hash slots).
 */
import type { BackplaneBus, BackplaneLogger, BackplaneStore, StoreCommand } from '../lifetime/backplane-bus';
import type { ManagedConnection } from '../lifetime/hub-lifetime-manager';
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
} from '../lifetime/presence';

/** Heartbeats a server may miss before it is taken for dead. */
export const MISSED_HEARTBEATS = 3;

/** @default heartbeat every 5 s, dead after 15 s */
export const DEFAULT_PRESENCE_HEARTBEAT_MS = 5_000;

/** Connections re-registered per pipeline after Redis lost them. */
const REREGISTER_BATCH = 500;

/** The key names of one hub's presence. */
export class PresenceKeys {
  readonly base: string;
  readonly servers: string;
  readonly events: string;
  readonly commands: string;

  constructor(channelPrefix: string, hubName: string) {
    this.base = `${channelPrefix}${hubName}:presence:`;
    this.servers = `${this.base}servers`;
    this.events = `${this.base}events`;
    this.commands = `${this.base}commands`;
  }

  server(name: string): string {
    return `${this.base}server:${name}`;
  }
  connection(id: string): string {
    return `${this.base}c:${id}`;
  }
  groupsOf(id: string): string {
    return `${this.base}cg:${id}`;
  }
  group(name: string): string {
    return `${this.base}g:${name}`;
  }
  user(id: string): string {
    return `${this.base}u:${id}`;
  }
  userGroups(id: string): string {
    return `${this.base}ug:${id}`;
  }
}

/** Connections one run of {@link SWEEP_SCRIPT} removes, so Redis is never busy with it for long. */
const SWEEP_BATCH = 1000;

/**
 * Removes up to ARGV[4] connections of a server (publishing a `disconnected` event for each when ARGV[5] is '1'); the
 * server itself goes with its last connection. ARGV: key base, server name, the heartbeat it was found dead with
 * (nothing is removed if it beat since; '' for unconditional), batch size, announce. Returns `{removed, left}`, or -1 when the server is alive again.
 */
const SWEEP_SCRIPT = `
local base, server, expected, batch, announce = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local score = redis.call('ZSCORE', base .. 'servers', server)
if expected ~= '' and score and tonumber(score) > tonumber(expected) then return -1 end
local ids = redis.call('SPOP', base .. 'server:' .. server, batch)
for _, id in ipairs(ids) do
  local user = redis.call('HGET', base .. 'c:' .. id, 'u')
  for _, group in ipairs(redis.call('SMEMBERS', base .. 'cg:' .. id)) do
    redis.call('ZREM', base .. 'g:' .. group, id)
  end
  if user and user ~= '' then redis.call('SREM', base .. 'u:' .. user, id) end
  redis.call('DEL', base .. 'c:' .. id, base .. 'cg:' .. id)
  if announce then
    local event = { e = 'disconnected', c = id, s = server }
    if user and user ~= '' then event.u = user end
    redis.call('PUBLISH', base .. 'events', cjson.encode(event))
  end
end
local left = redis.call('SCARD', base .. 'server:' .. server)
if left == 0 then redis.call('ZREM', base .. 'servers', server) end
return { #ids, left }
`;

/** An event on the events channel. */
interface WireEvent {
  /** connected | disconnected | joined | left | user-group-add | user-group-remove */
  readonly e: string;
  readonly c?: string;
  readonly u?: string;
  readonly s?: string;
  readonly g?: string;
  /** user-group-add: expiry in ms since the epoch, or null for none. */
  readonly x?: number | null;
}

/** The fields of a connection's hash, in the order reads ask for them. */
const RECORD_FIELDS = ['u', 's', 't', 'p', 'at'] as const;
type RecordFields = [string | null, string | null, string | null, string | null, string | null];

const EVENT_TYPES: ReadonlySet<string> = new Set(['connected', 'disconnected', 'joined', 'left']);

function hasUser(connection: ManagedConnection): boolean {
  return connection.userIdentifier !== undefined && connection.userIdentifier !== '';
}

/** Reads presence from Redis and writes user-level groups; what the emitter and every server use. */
export class RedisPresenceReader implements HubPresence {
  readonly scope = 'fleet' as const;
  readonly keys: PresenceKeys;
  protected readonly store: BackplaneStore;
  protected readonly listeners: PresenceListeners;
  private subscribed = false;

  constructor(
    protected readonly bus: BackplaneBus,
    channelPrefix: string,
    hubName: string,
    /** Heartbeats older than this are of dead servers. */
    protected readonly deadAfterMs: number,
    protected readonly log: BackplaneLogger,
  ) {
    if (bus.store === undefined) throw new TypeError('Presence needs a backplane bus with keyed storage.');
    this.store = bus.store;
    this.keys = new PresenceKeys(channelPrefix, hubName);
    this.listeners = new PresenceListeners((error) => this.log.error({ err: error }, 'a presence listener failed'));
  }

  async connection(connectionId: string): Promise<PresenceConnection | undefined> {
    const [record, live] = await this.store.pipeline([
      ['HMGET', this.keys.connection(connectionId), ...RECORD_FIELDS],
      this.liveServersCommand(),
    ]);
    return this.toConnection(connectionId, record as RecordFields, new Set(live as string[]));
  }

  user(userId: string): UserPresence {
    return {
      connections: async () => {
        const [ids, live] = (await this.store.pipeline([
          ['SMEMBERS', this.keys.user(userId)],
          this.liveServersCommand(),
        ])) as [string[], string[]];
        if (ids.length === 0) return [];
        const records = await this.store.pipeline(
          ids.map((id): StoreCommand => ['HMGET', this.keys.connection(id), ...RECORD_FIELDS]),
        );
        const servers = new Set(live);
        return ids
          .map((id, index) => this.toConnection(id, records[index] as RecordFields, servers))
          .filter((connection): connection is PresenceConnection => connection !== undefined)
          .sort((a, b) => a.connectedAt - b.connectedAt);
      },
    };
  }

  group(name: string): GroupPresence {
    return {
      connections: async (options: PresencePageOptions = {}): Promise<PresencePage> => {
        const limit = pageSize(options.limit);
        const after = decodeCursor(options.cursor);
        const [ids, live] = (await this.store.pipeline([
          ['ZRANGEBYLEX', this.keys.group(name), after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, limit],
          this.liveServersCommand(),
        ])) as [string[], string[]];
        if (ids.length === 0) return { connections: [] };
        const records = (await this.store.pipeline(
          ids.map((id) => ['HMGET', this.keys.connection(id), 'u', 's'] as StoreCommand),
        )) as [string | null, string | null][];
        const servers = new Set(live);
        const connections = [];
        for (let index = 0; index < ids.length; index++) {
          const [user, server] = records[index];
          if (server === null || !servers.has(server)) continue;
          connections.push({ connectionId: ids[index], ...(user !== null && user !== '' && { userId: user }) });
        }
        return { connections, ...(ids.length === limit && { cursor: encodeCursor(ids[ids.length - 1]) }) };
      },
      count: async () => Number((await this.store.pipeline([['ZCARD', this.keys.group(name)]]))[0]),
    };
  }

  async groupsOf(connectionId: string): Promise<readonly string[]> {
    const [groups] = (await this.store.pipeline([['SMEMBERS', this.keys.groupsOf(connectionId)]])) as [string[]];
    return groups.sort();
  }

  async servers(): Promise<readonly PresenceServer[]> {
    const [flat] = (await this.store.pipeline([
      ['ZRANGEBYSCORE', this.keys.servers, Date.now() - this.deadAfterMs, '+inf', 'WITHSCORES'],
    ])) as [string[]];
    const names: string[] = [];
    const beats: number[] = [];
    for (let index = 0; index < flat.length; index += 2) {
      names.push(flat[index]);
      beats.push(Number(flat[index + 1]));
    }
    if (names.length === 0) return [];
    const counts = await this.store.pipeline(names.map((name) => ['SCARD', this.keys.server(name)] as StoreCommand));
    return names.map((serverName, index) => ({
      serverName,
      connections: Number(counts[index]),
      lastHeartbeat: beats[index],
    }));
  }

  /**
   * Puts every current and future connection of `userId`, on any server, in `group`, until removed or expired.
   * Rejects when Redis is not reachable (nothing is recorded then).
   */
  async addUserToGroup(userId: string, group: string, ttlSeconds?: number): Promise<void> {
    const expiresAt = ttlSeconds === undefined ? null : Date.now() + ttlSeconds * 1000;
    await this.store.pipeline([
      ['ZADD', this.keys.userGroups(userId), expiresAt ?? '+inf', group],
      // Expired entries go when the user's entries are next written.
      ['ZREMRANGEBYSCORE', this.keys.userGroups(userId), '-inf', `(${Date.now()}`],
      ['PUBLISH', this.keys.commands, JSON.stringify({ e: 'user-group-add', u: userId, g: group, x: expiresAt })],
    ]);
  }

  /** Ends a user-level membership: every connection of the user, on any server, leaves the group. */
  async removeUserFromGroup(userId: string, group: string): Promise<void> {
    await this.store.pipeline([
      ['ZREM', this.keys.userGroups(userId), group],
      ['PUBLISH', this.keys.commands, JSON.stringify({ e: 'user-group-remove', u: userId, g: group })],
    ]);
  }

  /** Ends every user-level membership of a user. */
  async removeUserFromAllGroups(userId: string): Promise<void> {
    const [groups] = (await this.store.pipeline([['ZRANGE', this.keys.userGroups(userId), 0, -1]])) as [string[]];
    if (groups.length === 0) return;
    await this.store.pipeline([
      ['DEL', this.keys.userGroups(userId)],
      ...groups.map((group): StoreCommand => [
        'PUBLISH',
        this.keys.commands,
        JSON.stringify({ e: 'user-group-remove', u: userId, g: group }),
      ]),
    ]);
  }

  /** Whether a user has a (not expired) user-level membership of `group`. */
  async userInGroup(userId: string, group: string): Promise<boolean> {
    const [score] = (await this.store.pipeline([['ZSCORE', this.keys.userGroups(userId), group]])) as [string | null];
    return score !== null && (score === 'inf' || Number(score) > Date.now());
  }

  on(event: PresenceEventType, listener: PresenceListener): () => void {
    if (!this.subscribed) {
      this.subscribed = true;
      // Servers publish events only while someone listens: tell them now rather than at their next heartbeat.
      void this.bus
        .subscribe(this.keys.events, (payload) => this.onWireEvent(payload))
        .then(() => this.bus.publish(this.keys.commands, Buffer.from('{"e":"listening"}')))
        .catch((error: unknown) => this.log.debug({ err: error }, 'presence: could not announce a listener'));
      this.onListening();
    }
    return this.listeners.add(event, listener);
  }

  /** A listener was added here. */
  protected onListening(): void {}

  /** Stops receiving events. */
  async close(): Promise<void> {
    if (this.subscribed) await this.bus.unsubscribe(this.keys.events);
    this.subscribed = false;
  }

  protected parseWire(payload: Buffer): WireEvent | undefined {
    try {
      const event = JSON.parse(payload.toString('utf8')) as unknown;
      if (typeof event === 'object' && event !== null && typeof (event as WireEvent).e === 'string')
        return event as WireEvent;
    } catch {
      // logged below
    }
    this.log.warn({}, 'invalid presence message from Redis');
    return undefined;
  }

  protected onWireEvent(payload: Buffer): void {
    const event = this.parseWire(payload);
    if (event === undefined) return;
    if (EVENT_TYPES.has(event.e) && typeof event.c === 'string' && typeof event.s === 'string') {
      const presenceEvent: PresenceEvent = {
        type: event.e as PresenceEventType,
        connectionId: event.c,
        ...(typeof event.u === 'string' && event.u !== '' && { userId: event.u }),
        serverName: event.s,
        ...(typeof event.g === 'string' && { group: event.g }),
      };
      this.listeners.emit(presenceEvent);
    }
  }

  private liveServersCommand(): StoreCommand {
    return ['ZRANGEBYSCORE', this.keys.servers, Date.now() - this.deadAfterMs, '+inf'];
  }

  private toConnection(id: string, record: RecordFields, live: ReadonlySet<string>): PresenceConnection | undefined {
    const [user, server, transport, protocol, connectedAt] = record;
    if (server === null || !live.has(server)) return undefined;
    return {
      connectionId: id,
      ...(user !== null && user !== '' && { userId: user }),
      serverName: server,
      ...(transport !== null && transport !== '' && { transport }),
      ...(protocol !== null && protocol !== '' && { protocol }),
      connectedAt: Number(connectedAt),
    };
  }
}

/** What the presence writer needs of its lifetime manager. */
export interface PresenceHost {
  readonly serverName: string;
  /** This server's connections, with their groups and connect times (for re-registration). */
  localEntries(): Iterable<{ connection: ManagedConnection; connectedAt: number; groups: Iterable<string> }>;
  /** This server's connections of a user. */
  localUserConnections(userId: string): Iterable<ManagedConnection>;
  /** Joins a connection of this server to a group (locally: subscription, presence). */
  joinLocally(connection: ManagedConnection, group: string): Promise<void>;
  leaveLocally(connection: ManagedConnection, group: string): Promise<void>;
}

/** Options of {@link RedisPresence}. */
export interface RedisPresenceOptions {
  readonly bus: BackplaneBus;
  readonly channelPrefix: string;
  readonly hubName: string;
  /** @default {@link DEFAULT_PRESENCE_HEARTBEAT_MS} */
  readonly heartbeatIntervalMs?: number;
  /**
   * The hub's `internal:groups` channel (docs/protocol.md §3.4), which every server of the hub subscribes: more
   * subscribers than registered servers means servers that do not register (.NET's) share the hub.
   */
  readonly serversChannel?: string;
  readonly log: BackplaneLogger;
}

/** One server's presence: writes its connections and heartbeat, removes dead servers' entries, reads the fleet's. */
export class RedisPresence extends RedisPresenceReader {
  private host!: PresenceHost;
  private readonly heartbeatMs: number;
  private readonly serversChannel: string | undefined;
  private warnedOfUnregistered = false;
  /** Consecutive heartbeats that saw more servers than registered ones (servers starting are given time). */
  private unregisteredSeen = 0;
  private timer: NodeJS.Timeout | undefined;
  private registered = false;
  /** A change could not be written: the next heartbeat writes this server's entries anew. */
  private writesLost = false;
  private beating: Promise<void> | undefined;
  private closed = false;
  private stopWatchingBus: (() => void) | undefined;
  /** Whether some server listens to events (checked at each heartbeat, and told by a new listener's notice). */
  private eventsWanted = false;
  /** Expiry timers of user-level groups, by `user\0group`. */
  private readonly userGroupTimers = new Map<string, NodeJS.Timeout>();

  constructor(options: RedisPresenceOptions) {
    const heartbeatMs = options.heartbeatIntervalMs ?? DEFAULT_PRESENCE_HEARTBEAT_MS;
    super(options.bus, options.channelPrefix, options.hubName, heartbeatMs * MISSED_HEARTBEATS, options.log);
    this.heartbeatMs = heartbeatMs;
    this.serversChannel = options.serversChannel;
  }

  /** Starts the heartbeat and the events subscription; `host` is the lifetime manager. */
  start(host: PresenceHost): Promise<void> {
    this.host = host;
    const subscribed = this.bus.subscribe(this.keys.commands, (payload) => this.onCommand(payload));
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
    // Back after an outage: a heartbeat now, which writes everything again if Redis lost it.
    let wasConnected = this.bus.health().connected;
    this.stopWatchingBus = this.bus.onStateChange((health) => {
      if (health.connected && !wasConnected) void this.beat();
      wasConnected = health.connected;
    });
    void this.beat();
    return subscribed;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Writing: one pipeline each

  /** Registers a connection; resolves with the user-level groups it must join. */
  async connected(
    connection: ManagedConnection,
    connectedAt: number,
  ): Promise<readonly { group: string; expiresAt: number | null }[]> {
    const commands = this.registration(connection, connectedAt, []);
    const user = connection.userIdentifier;
    const withUser = hasUser(connection);
    const userGroupsAt = commands.length;
    if (withUser)
      commands.push(['ZRANGEBYSCORE', this.keys.userGroups(user as string), `(${Date.now()}`, '+inf', 'WITHSCORES']);
    this.withEvent(commands, () => ({
      e: 'connected',
      c: connection.connectionId,
      ...(withUser && { u: user }),
      s: this.host.serverName,
    }));
    const replies = await this.run(commands, 'connect', connection.connectionId);
    if (!withUser || replies === undefined) return [];
    const flat = replies[userGroupsAt] as string[];
    const groups = [];
    for (let index = 0; index < flat.length; index += 2) {
      const score = flat[index + 1];
      groups.push({ group: flat[index], expiresAt: score === 'inf' ? null : Number(score) });
    }
    return groups;
  }

  async disconnected(connection: ManagedConnection, groups: Iterable<string>): Promise<void> {
    const id = connection.connectionId;
    const commands: StoreCommand[] = [];
    for (const group of groups) commands.push(['ZREM', this.keys.group(group), id]);
    commands.push(
      ['DEL', this.keys.connection(id), this.keys.groupsOf(id)],
      ['SREM', this.keys.server(this.host.serverName), id],
    );
    const user = connection.userIdentifier;
    if (hasUser(connection)) commands.push(['SREM', this.keys.user(user as string), id]);
    this.withEvent(commands, () => ({
      e: 'disconnected',
      c: id,
      ...(hasUser(connection) && { u: user }),
      s: this.host.serverName,
    }));
    await this.run(commands, 'disconnect', id);
  }

  async joined(connection: ManagedConnection, group: string): Promise<void> {
    const id = connection.connectionId;
    const commands: StoreCommand[] = [
      ['ZADD', this.keys.group(group), 0, id],
      ['SADD', this.keys.groupsOf(id), group],
    ];
    this.withEvent(commands, () => ({
      e: 'joined',
      c: id,
      ...(hasUser(connection) && { u: connection.userIdentifier }),
      s: this.host.serverName,
      g: group,
    }));
    await this.run(commands, 'join', id);
  }

  async left(connection: ManagedConnection, group: string): Promise<void> {
    const id = connection.connectionId;
    const commands: StoreCommand[] = [
      ['ZREM', this.keys.group(group), id],
      ['SREM', this.keys.groupsOf(id), group],
    ];
    this.withEvent(commands, () => ({
      e: 'left',
      c: id,
      ...(hasUser(connection) && { u: connection.userIdentifier }),
      s: this.host.serverName,
      g: group,
    }));
    await this.run(commands, 'leave', id);
  }

  // ------------------------------------------------------------------------------------------------------------
  // User-level groups

  /** Joins a new connection to its user's groups, each until its expiry. */
  async joinUserGroups(
    connection: ManagedConnection,
    groups: readonly { group: string; expiresAt: number | null }[],
  ): Promise<void> {
    await Promise.all(
      groups.map(async ({ group, expiresAt }) => {
        this.scheduleExpiry(connection.userIdentifier as string, group, expiresAt);
        await this.host.joinLocally(connection, group);
      }),
    );
  }

  protected override onListening(): void {
    this.eventsWanted = true;
  }

  /** A message on the commands channel: a user-level group change, or a new listener. */
  private onCommand(payload: Buffer): void {
    const event = this.parseWire(payload);
    if (event === undefined) return;
    if (event.e === 'listening') {
      this.eventsWanted = true;
      return;
    }
    if (typeof event.u !== 'string' || typeof event.g !== 'string') return;
    const { u: user, g: group } = event;
    if (event.e === 'user-group-add') {
      const expiresAt = typeof event.x === 'number' ? event.x : null;
      this.scheduleExpiry(user, group, expiresAt);
      for (const connection of this.host.localUserConnections(user))
        this.quietly(this.host.joinLocally(connection, group), 'join');
    } else if (event.e === 'user-group-remove') {
      this.clearExpiry(user, group);
      this.leaveUserGroup(user, group);
    }
  }

  private scheduleExpiry(user: string, group: string, expiresAt: number | null): void {
    this.clearExpiry(user, group);
    if (expiresAt === null) return;
    const key = `${user}\0${group}`;
    const timer = setTimeout(
      () => {
        this.userGroupTimers.delete(key);
        this.leaveUserGroup(user, group);
      },
      Math.max(0, expiresAt - Date.now()),
    );
    timer.unref();
    this.userGroupTimers.set(key, timer);
  }

  private clearExpiry(user: string, group: string): void {
    const key = `${user}\0${group}`;
    const timer = this.userGroupTimers.get(key);
    if (timer !== undefined) clearTimeout(timer);
    this.userGroupTimers.delete(key);
  }

  private leaveUserGroup(user: string, group: string): void {
    for (const connection of this.host.localUserConnections(user))
      this.quietly(this.host.leaveLocally(connection, group), 'leave');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Heartbeat, dead servers, re-registration

  /** One heartbeat (never two at once). */
  beat(): Promise<void> {
    this.beating ??= this.beatOnce().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    if (this.closed || !this.bus.publishing) return;
    const now = Date.now();
    let replies;
    try {
      replies = await this.store.pipeline([
        ['ZADD', this.keys.servers, now, this.host.serverName],
        ['ZRANGEBYSCORE', this.keys.servers, '-inf', `(${now - this.deadAfterMs}`, 'WITHSCORES'],
        ['PUBSUB', 'NUMSUB', this.keys.events],
        ...(this.serversChannel !== undefined && !this.warnedOfUnregistered && this.bus.publishCountsEveryReceiver
          ? ([
              ['ZCOUNT', this.keys.servers, now - this.deadAfterMs, '+inf'],
              ['PUBSUB', 'NUMSUB', this.serversChannel],
            ] as StoreCommand[])
          : []),
      ]);
    } catch (error) {
      this.log.debug({ err: error }, 'presence heartbeat failed');
      return;
    }
    const [added, dead, listeners, registered, subscribers] = replies as [
      number,
      string[],
      [string, number],
      number?,
      [string, number]?,
    ];
    // On a Redis Cluster the count is one node's; there events are published always.
    this.eventsWanted = Number(listeners[1]) > 0 || !this.bus.publishCountsEveryReceiver;
    const unregistered = registered !== undefined && subscribers !== undefined && Number(subscribers[1]) > registered;
    this.unregisteredSeen = unregistered ? this.unregisteredSeen + 1 : 0;
    if (unregistered && this.unregisteredSeen >= MISSED_HEARTBEATS) {
      this.warnedOfUnregistered = true;
      this.log.warn(
        { subscribers: Number(subscribers![1]), registeredServers: registered },
        'presence: servers that do not register presence share this hub (ASP.NET Core servers, or ours without ' +
          '`presence`); their connections are not in presence listings',
      );
    }
    if (added === 1 && this.registered) {
      this.log.warn(
        { serverName: this.host.serverName },
        'presence: Redis had lost this server; registering its connections again',
      );
      this.writesLost = false;
      await this.reregister();
    } else if (this.writesLost) {
      // Changes made while Redis was unreachable were not recorded: this server's entries are written anew, from what
      // it holds now (connections that left meanwhile must not stay listed).
      this.writesLost = false;
      this.log.info(
        { serverName: this.host.serverName },
        'presence: changes were missed while Redis was unreachable; writing this server again',
      );
      try {
        await this.sweep(this.host.serverName, '', false);
        await this.reregister();
        await this.store.pipeline([['ZADD', this.keys.servers, Date.now(), this.host.serverName]]);
      } catch (error) {
        this.writesLost = true;
        this.log.debug({ err: error }, 'presence: writing this server again failed; retried at the next heartbeat');
      }
    }
    this.registered = true;
    for (let index = 0; index < dead.length; index += 2) {
      const server = dead[index];
      try {
        const removed = await this.sweep(server, dead[index + 1]);
        if (removed >= 0)
          this.log.info(
            { deadServer: server, connections: removed },
            'presence: removed the entries of a server that stopped its heartbeat',
          );
      } catch (error) {
        this.log.warn(
          { err: error, deadServer: server },
          'presence: the entries of a dead server could not be removed',
        );
      }
    }
  }

  /**
   * Removes a server's entries, {@link SWEEP_BATCH} connections per script run; resolves with how many, or -1 when
   * the server beat again meanwhile.
   */
  private async sweep(server: string, foundDeadAt: string, announce = true): Promise<number> {
    let removed = 0;
    for (;;) {
      const [reply] = (await this.store.pipeline([
        ['EVAL', SWEEP_SCRIPT, 0, this.keys.base, server, foundDeadAt, SWEEP_BATCH, announce ? '1' : '0'],
      ])) as [number | [number, number]];
      if (!Array.isArray(reply)) return -1;
      removed += reply[0];
      if (reply[1] === 0) return removed;
    }
  }

  /** Writes every connection this server holds, with its groups, in batches. */
  private async reregister(): Promise<void> {
    let batch: StoreCommand[] = [];
    let count = 0;
    for (const { connection, connectedAt, groups } of this.host.localEntries()) {
      batch.push(...this.registration(connection, connectedAt, groups));
      if (++count % REREGISTER_BATCH === 0) {
        await this.run(batch, 'reregister', undefined);
        batch = [];
      }
    }
    if (batch.length > 0) await this.run(batch, 'reregister', undefined);
  }

  /** The commands that record one connection and its groups. */
  private registration(connection: ManagedConnection, connectedAt: number, groups: Iterable<string>): StoreCommand[] {
    const id = connection.connectionId;
    const server = this.host.serverName;
    const commands: StoreCommand[] = [
      [
        'HSET',
        this.keys.connection(id),
        'u',
        connection.userIdentifier ?? '',
        's',
        server,
        't',
        connection.transport ?? '',
        'p',
        connection.protocol ?? '',
        'at',
        connectedAt,
      ],
      ['SADD', this.keys.server(server), id],
    ];
    if (hasUser(connection)) commands.push(['SADD', this.keys.user(connection.userIdentifier as string), id]);
    for (const group of groups)
      commands.push(['ZADD', this.keys.group(group), 0, id], ['SADD', this.keys.groupsOf(id), group]);
    return commands;
  }

  /** The event's PUBLISH, appended to a change's pipeline while some server listens. */
  private withEvent(commands: StoreCommand[], event: () => WireEvent): StoreCommand[] {
    if (this.eventsWanted) commands.push(['PUBLISH', this.keys.events, JSON.stringify(event())]);
    return commands;
  }

  /** Runs a write; a failure is logged, never thrown: the heartbeat after the outage writes everything again. */
  private async run(
    commands: readonly StoreCommand[],
    what: string,
    connectionId: string | undefined,
  ): Promise<unknown[] | undefined> {
    try {
      return await this.store.pipeline(commands);
    } catch (error) {
      this.log.debug({ err: error, connectionId }, `presence: the ${what} was not recorded in Redis`);
      // Written again once Redis is back: the next heartbeat rewrites this server's entries.
      this.writesLost = true;
      return undefined;
    }
  }

  private quietly(task: Promise<void>, what: string): void {
    task.catch((error: unknown) => this.log.warn({ err: error }, `presence: a user-level group ${what} failed`));
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.stopWatchingBus?.();
    for (const timer of this.userGroupTimers.values()) clearTimeout(timer);
    this.userGroupTimers.clear();
    await Promise.all([this.bus.unsubscribe(this.keys.commands), super.close()]);
    // A graceful stop leaves no entries behind: what this server held goes now, not after three heartbeats.
    if (this.registered && this.bus.publishing) {
      try {
        await this.sweep(this.host.serverName, '');
      } catch (error) {
        this.log.debug({ err: error }, 'presence: entries could not be removed at shutdown');
      }
    }
  }
}
