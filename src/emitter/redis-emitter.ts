/**
 * The Redis emitter: sends to the clients of a hub from a process that serves no clients — a queue consumer, a
 * cron job, a script — by publishing on the hub's backplane channels exactly as a server does. Because the layout is
 * ASP.NET Core's (docs/protocol.md §3), the messages reach the clients of .NET servers on the same Redis too.
 *
 * What it shares with a server: the channel names and payload writers (`protocol/redis/`), the hub protocols (each
 * message framed once per protocol, so JSON and MessagePack clients both get it), and the Redis connection code of
 * the backplane (`RedisBus`, `resolveRedisTarget`: URL, StackExchange.Redis connection string, TLS, ACL users,
 * Cluster, Sentinel). What it does not do: it has no connections, so it never subscribes the `all`, group, user or
 * connection channels — it only listens on its own ack and return channels, under a server name of its own
 * (docs/protocol.md §3.1), for group-command acks and client results (docs/protocol.md §3.6, §3.7).
 *
 * Unlike a server, which delivers to its own clients while Redis is down, an emitter has nothing to fall back on: a
 * send while Redis is unreachable rejects, so a job can be retried.
 */
import { hostname } from 'node:os';
import type { HubProtocol } from '../../protocol/hub-protocol';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { MessageType, type CompletionMessage, type HubMessage, type InvocationMessage } from '../../protocol/messages';
import {
  RedisChannels,
  RedisGroupAction,
  createServerName,
  decodeRedisCompletion,
  encodeRedisGroupCommand,
  encodeRedisInvocation,
} from '../../protocol/redis';
import { ClientResultErrors, HubException, type SignalRErrorCode } from '../shared/errors';
import type { GroupManager, HubClientsFor, UntypedClient } from '../hub/hub';
import { LifetimeHubClients, lifetimeGroupManager } from '../hub/hub-clients';
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneHealth,
  type BackplaneLogger,
} from '../lifetime/backplane-bus';
import { ClientResultsManager, ConnectionIOError } from '../lifetime/client-results';
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager';
import type { HubPresence } from '../lifetime/presence';
import { DEFAULT_PRESENCE_HEARTBEAT_MS, MISSED_HEARTBEATS, RedisPresenceReader } from '../redis/redis-presence';
import { GroupCommandAcks } from '../redis/group-command-acks';
import { RedisBus } from '../redis/redis-bus';
import {
  DEFAULT_STREAM_MAXIMUM_AGE_MS,
  DEFAULT_STREAM_MAXIMUM_LENGTH,
  StreamsBus,
  modeMarkerKey,
} from '../redis/streams-bus';
import {
  isRedisUrl,
  resolveRedisTarget,
  type RedisConnectionSettings,
  type RedisTlsOptions,
} from '../redis/redis-config';
import type { RedisConnectionOptions } from '../redis/redis-connector';

/** Where Redis is, in the forms the server's `redis` option takes (see the plugin's `RedisBackplaneOptions`). */
export interface EmitterRedisOptions {
  /** `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. */
  readonly url?: string;
  /** The StackExchange.Redis connection string the .NET servers use (endpoints, `ssl`, `password`, `serviceName`, …). */
  readonly connectionString?: string;
  /** ioredis connection options; they override what `url` or `connectionString` say. */
  readonly options?: RedisConnectionOptions;
  /** TLS on, or its settings (CA, client certificate, server name). @default as the URL or connection string say */
  readonly tls?: boolean | RedisTlsOptions;
  /**
   * Whether {@link HubEmitter.ready} rejects when Redis cannot be reached within the connect timeout.
   * @default the connection string's `abortConnect`; false with `url` or `options`
   */
  readonly abortConnect?: boolean;
}

/** Options of {@link createEmitter}. */
export interface EmitterOptions {
  /**
   * Where Redis is: a `redis://` / `rediss://` URL or a StackExchange.Redis connection string as a string, or the
   * same object the server's `redis` option takes.
   */
  readonly redis: string | EmitterRedisOptions;
  /**
   * The hub's name on the backplane, as the servers register it: the hub's `name` on our servers, the hub class's
   * full type name on .NET servers (`MyApp.Hubs.ChatHub`).
   */
  readonly hub: string;
  /**
   * The StackExchange.Redis `ChannelPrefix` of the servers.
   * @default the connection string's `channelPrefix`, else '' (none)
   */
  readonly channelPrefix?: string;
  /**
   * How long `addToGroup` / `removeFromGroup` wait for the owning server's ack before they reject (.NET servers
   * wait 30 s).
   * @default 30000
   */
  readonly ackTimeoutMs?: number;
  /**
   * Most client results (`client(id).invoke`) waiting for their answer at once; one more rejects at once, so a
   * worker invoking clients that never answer cannot grow without bound.
   * @default 1000
   */
  readonly maximumPendingResults?: number;
  /**
   * The servers' presence heartbeat (their `presence.heartbeatIntervalMs`): `presence` takes a server silent for
   * three of them for dead. Presence reads answer only when the servers run with `presence` on.
   * @default 5000
   */
  readonly presenceHeartbeatIntervalMs?: number;
  /**
   * The hub protocols each message is framed in. Every protocol any server's clients use must be here: a .NET
   * server aborts a connection whose protocol a payload lacks (docs/protocol.md §3.3).
   * @default json and messagepack, in .NET's order
   */
  readonly protocols?: readonly HubProtocol[];
  /**
   * This emitter's server name, in its ack and return channels and its group commands.
   * @default `{hostname}_{32 hex digits}`, as a .NET server names itself
   */
  readonly serverName?: string;
  /**
   * Where connection changes and dropped replies are logged (pino or Fastify loggers fit).
   * @default warnings and errors to `console`, nothing else
   */
  readonly logger?: BackplaneLogger;
  /**
   * The layout of the servers' backplane (their `redis.mode`): `'streams'` writes stream entries and reads its acks
   * and client results from the streams; `'pubsub'` refuses to start beside servers in streams mode.
   * @default 'pubsub'
   */
  readonly mode?: 'pubsub' | 'streams';
  /**
   * The servers use sharded pub/sub on a Redis Cluster (their `redis.shardedPubSub`): sends go out as `SPUBLISH`,
   * acks and client results come back on `SSUBSCRIBE`d channels. Without it, an emitter's classic `PUBLISH` never
   * reaches such servers. `redis` must name the cluster's seed nodes.
   * @default false
   */
  readonly shardedPubSub?: boolean;
}

/**
 * A hub's clients seen from outside any server: the surface of a hub context (`IHubContext<THub>`), typed by the
 * client interface `TClient` as a `Hub<TClient>` is.
 */
export interface HubEmitter<TClient extends object = UntypedClient> {
  /** Every way to address clients: `all`, `allExcept`, `client(id)` (with `invoke`), `clients`, `group(s)`, `user(s)`… */
  readonly clients: HubClientsFor<TClient>;
  /**
   * Group membership of connections on any server, each change acknowledged by the server that owns the connection;
   * user-level groups when the servers run with `presence`.
   */
  readonly groups: GroupManager;
  /** Who is connected on every server, when the servers run with `presence` on (`scope: 'fleet'`). */
  readonly presence: HubPresence;
  /** The hub's name on the backplane. */
  readonly hubName: string;
  /** This emitter's server name (its ack and return channels end with it). */
  readonly serverName: string;
  /**
   * Resolves once connected to Redis and listening on the ack and return channels; rejects when Redis refused the
   * configuration (credentials, TLS, ACL) or, with `abortConnect`, could not be reached in time — the emitter is then
   * closed, and every send rejects with that reason. Sends wait for it themselves; call it to fail fast at startup.
   */
  ready(): Promise<void>;
  /** The Redis connection's health (state, outages, messages published). */
  health(): BackplaneHealth;
  /** Rejects what still waits (acks, client results), disconnects from Redis; later sends reject. */
  close(): Promise<void>;
}

/** The error of anything asked of an emitter after {@link HubEmitter.close}. */
export class EmitterClosedError extends Error {
  override readonly name = 'EmitterClosedError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_EMITTER_CLOSED';
  constructor() {
    super('The emitter is closed.');
  }
}

/** The error of `addToGroup` / `removeFromGroup` when no server acknowledged the command in time. */
export class GroupCommandTimeoutError extends Error {
  override readonly name = 'GroupCommandTimeoutError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_GROUP_ACK_TIMEOUT';
}

const DEFAULT_ACK_TIMEOUT_MS = 30_000;
const DEFAULT_MAXIMUM_PENDING_RESULTS = 1000;
const NO_IDS: readonly string[] = Object.freeze([]);

const consoleLogger: BackplaneLogger = {
  error: (object, message) => console.error(`fastify-signalr emitter: ${message}`, object),
  warn: (object, message) => console.warn(`fastify-signalr emitter: ${message}`, object),
  info: () => undefined,
  debug: () => undefined,
};

/** A failed publish as the caller sees it: the message was not sent, and why (Redis down, connection lost, ACL). */
function notSent(error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  const wrapped = new BackplaneUnavailableError(`The message was not sent to Redis: ${reason}`);
  (wrapped as Error & { cause?: unknown }).cause = error;
  return wrapped;
}

/** Reads the first message of framed bytes with `protocol`; null when there is none. */
function readFramed(protocol: HubProtocol, bytes: Uint8Array): HubMessage | null {
  let message: HubMessage | null = null;
  protocol.createReader({ maximumMessageSize: null }).push(bytes, (parsed) => {
    message ??= parsed;
  });
  return message;
}

/** A client-result invocation id as .NET's Redis manager makes them: 16 random bytes, Base64 without padding. */
function newInvocationId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16)))
    .toString('base64')
    .slice(0, 22);
}

function connectionSettings(redis: string | EmitterRedisOptions): RedisConnectionSettings {
  if (typeof redis === 'string') return isRedisUrl(redis) ? { url: redis } : { connectionString: redis };
  return redis;
}

/**
 * The routing operations of one hub for a process without connections: every send is one PUBLISH of one payload
 * holding the message framed once per protocol; group changes are group commands waiting for an ack; client results
 * come back on the emitter's return channel. It implements the lifetime-manager interface so the hub context's
 * proxies (`LifetimeHubClients`) serve as the emitter's `clients`.
 */
export class RedisEmitterLifetime implements HubLifetimeManager {
  readonly serverName: string;
  readonly channels: RedisChannels;
  private readonly protocols: readonly HubProtocol[];
  private readonly ackTimeoutMs: number;
  private readonly maximumPendingResults: number;
  /** Group commands waiting for the owning server's ack. */
  private readonly acks: GroupCommandAcks;
  private readonly results = new ClientResultsManager();
  private closed = false;
  /** Connected (or given up on, without abortConnect) and the ack and return channels subscribed. */
  readonly started: Promise<void>;

  constructor(
    private readonly bus: BackplaneBus & { ready?(): Promise<void> },
    options: {
      hubName: string;
      channelPrefix: string;
      serverName: string;
      protocols: readonly HubProtocol[];
      ackTimeoutMs: number;
      maximumPendingResults: number;
    },
    private readonly log: BackplaneLogger,
  ) {
    this.serverName = options.serverName;
    this.protocols = options.protocols;
    this.ackTimeoutMs = options.ackTimeoutMs;
    this.acks = new GroupCommandAcks({
      timeoutMs: this.ackTimeoutMs,
      // A script awaiting a group change must not exit before its answer.
      holdsProcess: true,
      log,
      timeoutError: ({ connectionId, groupName, action }) => {
        const verb = action === RedisGroupAction.Add ? 'add' : 'remove';
        return new GroupCommandTimeoutError(
          `No server acknowledged the request to ${verb} connection '${connectionId}' ${action === RedisGroupAction.Add ? 'to' : 'from'} ` +
            `group '${groupName}' within ${this.ackTimeoutMs} ms: no server on this Redis owns that connection (or Redis lost the message).`,
        );
      },
    });
    this.maximumPendingResults = options.maximumPendingResults;
    this.channels = new RedisChannels({
      hubName: options.hubName,
      serverName: this.serverName,
      channelPrefix: options.channelPrefix,
    });
    const channels = this.channels;
    this.started = (async () => {
      // Subscribed after the first connection, so that each SUBSCRIBE resolves only once Redis confirmed it.
      await bus.ready?.();
      await Promise.all([
        bus.subscribe(channels.ack, (payload) => this.acks.onAck(payload)),
        bus.subscribe(channels.returnResults, (payload) => this.onReturnedResult(payload)),
      ]);
    })();
    // A configuration Redis refuses is not retried, as a server refuses to start with it: the emitter closes, and
    // every send rejects with the reason.
    this.started.catch(() => void bus.close());
  }

  /** Presence of the hub's servers, and their user-level groups. */
  presenceReader?: RedisPresenceReader;

  addUserToGroup(userId: string, groupName: string, options: { readonly ttlSeconds?: number }): Promise<void> {
    return this.reader().addUserToGroup(userId, groupName, options.ttlSeconds);
  }

  removeUserFromGroup(userId: string, groupName: string): Promise<void> {
    return this.reader().removeUserFromGroup(userId, groupName);
  }

  private reader(): RedisPresenceReader {
    if (this.closed) throw new EmitterClosedError();
    if (this.presenceReader === undefined) throw new TypeError('This emitter has no presence.');
    return this.presenceReader;
  }

  // A process without connections has none to add or remove.
  onConnected(): Promise<void> {
    return Promise.reject(new TypeError('An emitter serves no connections.'));
  }

  onDisconnected(): Promise<void> {
    return Promise.resolve();
  }

  setConnectionResult(): boolean {
    return false;
  }

  sendAll(method: string, args: readonly unknown[]): Promise<void> {
    return this.publishInvocation([this.channels.all], method, args, NO_IDS);
  }

  sendAllExcept(method: string, args: readonly unknown[], excludedConnectionIds: readonly string[]): Promise<void> {
    return this.publishInvocation([this.channels.all], method, args, excludedConnectionIds);
  }

  sendConnection(connectionId: string, method: string, args: readonly unknown[]): Promise<void> {
    return this.publishInvocation([this.channels.connection(connectionId)], method, args, NO_IDS);
  }

  sendConnections(connectionIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    return this.publishInvocation(
      connectionIds.map((id) => this.channels.connection(id)),
      method,
      args,
      NO_IDS,
    );
  }

  sendGroup(groupName: string, method: string, args: readonly unknown[]): Promise<void> {
    return this.publishInvocation([this.channels.group(groupName)], method, args, NO_IDS);
  }

  sendGroups(groupNames: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    const channels = groupNames.filter((name) => name !== '').map((name) => this.channels.group(name));
    return this.publishInvocation(channels, method, args, NO_IDS);
  }

  sendGroupExcept(
    groupName: string,
    method: string,
    args: readonly unknown[],
    excludedConnectionIds: readonly string[],
  ): Promise<void> {
    return this.publishInvocation([this.channels.group(groupName)], method, args, excludedConnectionIds);
  }

  sendUser(userId: string, method: string, args: readonly unknown[]): Promise<void> {
    return this.publishInvocation([this.channels.user(userId)], method, args, NO_IDS);
  }

  sendUsers(userIds: readonly string[], method: string, args: readonly unknown[]): Promise<void> {
    const channels = userIds.filter((id) => id !== '').map((id) => this.channels.user(id));
    return this.publishInvocation(channels, method, args, NO_IDS);
  }

  addToGroup(connectionId: string, groupName: string): Promise<void> {
    return this.sendGroupCommand(connectionId, groupName, RedisGroupAction.Add);
  }

  removeFromGroup(connectionId: string, groupName: string): Promise<void> {
    return this.sendGroupCommand(connectionId, groupName, RedisGroupAction.Remove);
  }

  /**
   * Invokes `method` on one connection of any server and resolves with the client's answer (docs/protocol.md §3.7):
   * the invocation carries this emitter's return channel, where the owning server publishes the Completion.
   */
  async invokeConnection(
    connectionId: string,
    method: string,
    args: readonly unknown[],
    signal?: AbortSignal,
  ): Promise<unknown> {
    await this.whenOpen();
    if (signal?.aborted) throw new HubException(ClientResultErrors.canceled);
    if (this.results.size >= this.maximumPendingResults) {
      throw new Error(`${this.maximumPendingResults} client results are already awaited (maximumPendingResults).`);
    }
    this.requireReceiving(this.channels.returnResults);
    const invocationId = newInvocationId();
    const payload = this.payload(method, args, NO_IDS, invocationId);
    const result = this.results.add(connectionId, invocationId, signal);
    let receivers: number;
    try {
      receivers = await this.bus.publish(this.channels.connection(connectionId), payload);
    } catch (error) {
      this.results.remove(invocationId);
      throw notSent(error);
    }
    // Nobody subscribed the connection's channel: no server owns it (as .NET's InvokeConnectionAsync). On a Redis
    // Cluster the count covers one node only, so there the call waits for its answer or its cancellation.
    if (receivers < 1 && this.bus.publishCountsEveryReceiver) {
      this.results.remove(invocationId);
      throw new ConnectionIOError(ClientResultErrors.connectionDoesNotExist(connectionId));
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.acks.failAll(() => new EmitterClosedError());
    this.results.failAll();
    await this.bus.close();
  }

  // ------------------------------------------------------------------------------------------------------------

  private async whenOpen(): Promise<void> {
    if (this.closed) throw new EmitterClosedError();
    await this.started;
    if (this.closed) throw new EmitterClosedError();
  }

  /** Throws unless replies on `channel` reach this emitter now (a reply published before would be lost). */
  private requireReceiving(channel: string): void {
    if (!this.bus.receives(channel)) {
      throw new BackplaneUnavailableError(`The emitter is not connected to Redis (${this.bus.health().state}).`);
    }
  }

  /** One payload, written once, published on each channel in one pipelined batch. */
  private async publishInvocation(
    channels: readonly string[],
    method: string,
    args: readonly unknown[],
    excluded: readonly string[],
  ): Promise<void> {
    await this.whenOpen();
    if (channels.length === 0) return;
    const payload = this.payload(method, args, excluded);
    try {
      if (channels.length === 1) await this.bus.publish(channels[0], payload);
      else await Promise.all(channels.map((channel) => this.bus.publish(channel, payload)));
    } catch (error) {
      throw notSent(error);
    }
  }

  private payload(
    method: string,
    args: readonly unknown[],
    excluded: readonly string[],
    invocationId?: string,
  ): Buffer {
    const message: InvocationMessage =
      invocationId === undefined
        ? { type: MessageType.Invocation, target: method, arguments: args as unknown[] }
        : { type: MessageType.Invocation, invocationId, target: method, arguments: args as unknown[] };
    const messages = new Map<string, Uint8Array>();
    for (const protocol of this.protocols) messages.set(protocol.name, protocol.writeMessage(message));
    return encodeRedisInvocation({
      excludedConnectionIds: excluded,
      messages,
      ...(invocationId !== undefined && { invocationId, returnChannel: this.channels.returnResultsName }),
    });
  }

  /**
   * A group command on `{hub}:internal:groups`, resolved by the owning server's ack on this emitter's ack channel
   * (docs/protocol.md §3.6). Nobody acks a command for a connection no server owns: it rejects after `ackTimeoutMs`.
   */
  private async sendGroupCommand(connectionId: string, groupName: string, action: RedisGroupAction): Promise<void> {
    await this.whenOpen();
    this.requireReceiving(this.channels.ack);
    await this.acks.send({ connectionId, groupName, action }, async (id, withdraw) => {
      try {
        return await this.bus.publish(
          this.channels.groupManagement,
          encodeRedisGroupCommand({ id, serverName: this.serverName, action, groupName, connectionId }),
          { signal: withdraw },
        );
      } catch (error) {
        throw notSent(error);
      }
    });
  }

  private onReturnedResult(payload: Buffer): void {
    let completion: HubMessage | null;
    try {
      const reply = decodeRedisCompletion(payload);
      const protocol = this.protocols.find((candidate) => candidate.name === reply.protocolName);
      if (protocol === undefined) {
        this.log.warn(
          { protocol: reply.protocolName },
          'a client result came in a protocol this emitter does not speak',
        );
        return;
      }
      completion = readFramed(protocol, reply.completion);
    } catch (error) {
      this.log.warn({ err: error }, 'invalid client result from Redis');
      return;
    }
    if (completion?.type !== MessageType.Completion) return;
    this.results.completeRelayed(completion as CompletionMessage);
  }
}

/**
 * Creates an emitter for one hub. It starts connecting at once; sends made before the connection is up wait for
 * it. Close it when done (`await hub.close()`), or the process keeps its Redis connections open.
 *
 * @typeParam TClient - the client methods, as for `Hub<TClient>`: `send` and `invoke` then take only its method
 *   names with their argument types, and `invoke` resolves with the method's return type.
 * @throws RedisConfigurationError when the `redis` option is malformed (the message never holds a password)
 */
export function createEmitter<TClient extends object = UntypedClient>(options: EmitterOptions): HubEmitter<TClient> {
  if (typeof options.hub !== 'string' || options.hub === '')
    throw new TypeError("createEmitter needs the hub's name (`hub`).");
  const target = resolveRedisTarget(connectionSettings(options.redis));
  const log = options.logger ?? consoleLogger;
  for (const warning of target.warnings) log.warn({}, warning);
  const keyPrefix = options.channelPrefix ?? target.channelPrefix ?? '';
  // No publish queue either way: a send rejects while Redis is unreachable (see the README).
  const bus =
    options.mode === 'streams'
      ? new StreamsBus({
          target,
          log,
          keyPrefix,
          retention: { maximumLength: DEFAULT_STREAM_MAXIMUM_LENGTH, maximumAgeMs: DEFAULT_STREAM_MAXIMUM_AGE_MS },
        })
      : new RedisBus({
          target,
          log,
          streamsMarkerKey: modeMarkerKey(keyPrefix),
          ...(options.shardedPubSub === true && { shardedPubSub: true }),
        });
  const lifetime = new RedisEmitterLifetime(
    bus,
    {
      hubName: options.hub,
      channelPrefix: options.channelPrefix ?? target.channelPrefix ?? '',
      serverName: options.serverName ?? createServerName(hostname()),
      protocols: options.protocols ?? [jsonHubProtocol, messagePackHubProtocol],
      ackTimeoutMs: options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
      maximumPendingResults: options.maximumPendingResults ?? DEFAULT_MAXIMUM_PENDING_RESULTS,
    },
    log,
  );
  const presence = new RedisPresenceReader(
    bus,
    options.channelPrefix ?? target.channelPrefix ?? '',
    options.hub,
    (options.presenceHeartbeatIntervalMs ?? DEFAULT_PRESENCE_HEARTBEAT_MS) * MISSED_HEARTBEATS,
    log,
  );
  lifetime.presenceReader = presence;
  return {
    clients: new LifetimeHubClients(lifetime) as unknown as HubClientsFor<TClient>,
    groups: lifetimeGroupManager(lifetime),
    presence,
    hubName: options.hub,
    serverName: lifetime.serverName,
    ready: () => lifetime.started,
    health: () => bus.health(),
    close: async () => {
      await presence.close();
      await lifetime.close();
    },
  };
}
