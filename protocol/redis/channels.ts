/**
 * Redis channel names of ASP.NET Core's backplane, and the server names they embed.
 *
 * Spec: docs/protocol.md §3.1 (server name), §3.2 (channel names, channel prefix), §3.4 (subscription order).
 * .NET files: `src/SignalR/server/StackExchangeRedis/src/Internal/RedisChannels.cs@v10.0.0` L31-L79,
 * `src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0` L34, L75, L86-L87, L734-L815.
 *
 * Two spellings of a channel exist:
 * - the **name**, `{hub}:…`, which SignalR computes and which is written inside payloads (the return channel of a
 *   client-result invocation);
 * - the **wire channel** a server SUBSCRIBEs and PUBLISHes: StackExchange.Redis writes its `ChannelPrefix`
 *   immediately before the name, with no separator (`myapp` + `Hub:all` = `myappHub:all`), and on receipt drops
 *   messages whose channel lacks the prefix and strips it from the others (docs/protocol.md §3.2, SE.Redis
 *   `PhysicalConnection.cs@2.7.27`, `RawResult.cs@2.7.27`).
 *
 * Names are inserted raw: group and user names may contain `:` or any other character (docs/protocol.md §3.2).
 */
import { randomUUID } from 'node:crypto';

/**
 * What a backplane channel carries, spelled as the channel text after `{hub}:`:
 * - `all` — invocations for every connection;
 * - `internal:groups` — group commands for every server;
 * - `internal:ack` — acks for one server's group commands (name = that server's name);
 * - `internal:return` — client-result replies to one server (name = that server's name; .NET 7+);
 * - `connection`, `group`, `user` — invocations for one connection, group or user (name = its id or name).
 */
export type RedisChannelKind =
  'all' | 'internal:groups' | 'internal:ack' | 'internal:return' | 'connection' | 'group' | 'user';

/** A channel every server of a hub shares: it has no name part. */
export interface RedisSharedChannel {
  readonly kind: 'all' | 'internal:groups';
}

/** A channel for one server, connection, group or user. */
export interface RedisNamedChannel {
  readonly kind: 'internal:ack' | 'internal:return' | 'connection' | 'group' | 'user';
  /** Server name (`internal:ack`, `internal:return`), connection id, group name or user id, as written. */
  readonly name: string;
}

/** A backplane channel, parsed. */
export type RedisChannel = RedisSharedChannel | RedisNamedChannel;

/** The channel name of `channel` for hub `hubName` (no prefix): what .NET's `RedisChannels` computes. */
export function redisChannelName(hubName: string, channel: RedisChannel): string {
  return 'name' in channel ? `${hubName}:${channel.kind}:${channel.name}` : `${hubName}:${channel.kind}`;
}

/** Channel text after `{hub}:` → kind, for the kinds with a name part; matched in this order. */
const NAMED_KINDS: readonly RedisNamedChannel['kind'][] = [
  'connection',
  'group',
  'user',
  'internal:ack',
  'internal:return',
];

/**
 * Parses a channel name (no prefix) of hub `hubName`; `undefined` when it is not one of that hub's backplane
 * channels (another hub's, StackExchange.Redis's own `__Booksleeve_MasterChanged`, anything else).
 */
export function parseRedisChannelName(hubName: string, name: string): RedisChannel | undefined {
  const hubLength = hubName.length;
  if (name.length <= hubLength || name.charCodeAt(hubLength) !== 0x3a /* : */ || !name.startsWith(hubName)) {
    return undefined;
  }
  const rest = name.slice(hubLength + 1);
  if (rest === 'all' || rest === 'internal:groups') return { kind: rest };
  for (const kind of NAMED_KINDS) {
    // `kind:` is a prefix of the rest; the name is whatever follows, colons included.
    if (rest.length > kind.length && rest.charCodeAt(kind.length) === 0x3a && rest.startsWith(kind)) {
      return { kind, name: rest.slice(kind.length + 1) };
    }
  }
  return undefined;
}

/** Options of {@link RedisChannels}. */
export interface RedisChannelsOptions {
  /**
   * The hub's channel name part: .NET uses `typeof(THub).FullName`, the namespace-qualified CLR name
   * (`WebAPI.ChatHub`; nested types `Outer+Inner`)
   * (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L75). Node and .NET servers of one
   * hub must agree.
   */
  readonly hubName: string;
  /** This server's name, from {@link createServerName}. */
  readonly serverName: string;
  /** StackExchange.Redis `ChannelPrefix` of the .NET servers sharing the Redis; `''` (the default) for none. */
  readonly channelPrefix?: string;
}

/**
 * The channels of one hub on one server: wire channels to SUBSCRIBE and PUBLISH (prefix included), the
 * unprefixed names that go inside payloads, and parsing of received wire channels.
 */
export class RedisChannels {
  readonly hubName: string;
  readonly serverName: string;
  readonly channelPrefix: string;

  /** Wire channel of broadcasts (`{prefix}{hub}:all`). */
  readonly all: string;
  /** Wire channel of group commands (`{prefix}{hub}:internal:groups`). */
  readonly groupManagement: string;
  /** Wire channel of the acks this server receives (`{prefix}{hub}:internal:ack:{serverName}`). */
  readonly ack: string;
  /** Wire channel of the client-result replies this server receives (`{prefix}{hub}:internal:return:{serverName}`). */
  readonly returnResults: string;
  /**
   * This server's return channel **name**, unprefixed, as written into client-result invocations; the answering
   * server prepends its own prefix (docs/protocol.md §3.2).
   */
  readonly returnResultsName: string;

  constructor(options: RedisChannelsOptions) {
    const { hubName, serverName } = options;
    if (hubName === '') throw new TypeError('The hub name of Redis channels must not be empty.');
    this.hubName = hubName;
    this.serverName = serverName;
    this.channelPrefix = options.channelPrefix ?? '';
    this.all = this.build({ kind: 'all' });
    this.groupManagement = this.build({ kind: 'internal:groups' });
    this.ack = this.ackOf(serverName);
    this.returnResultsName = redisChannelName(hubName, { kind: 'internal:return', name: serverName });
    this.returnResults = this.toWire(this.returnResultsName);
  }

  /**
   * The channels a server subscribes when it starts, in .NET's order: `all`, `internal:groups`,
   * `internal:ack:{me}`, `internal:return:{me}` (docs/protocol.md §3.4,
   * src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L86-L87, L734-L808; the golden startup
   * capture shows these four SUBSCRIBE commands in this order).
   */
  serverSubscriptions(): string[] {
    return [this.all, this.groupManagement, this.ack, this.returnResults];
  }

  /** Wire channel of `channel`. */
  build(channel: RedisChannel): string {
    return this.channelPrefix + redisChannelName(this.hubName, channel);
  }

  /** Wire channel of one connection (`{prefix}{hub}:connection:{connectionId}`). */
  connection(connectionId: string): string {
    return this.build({ kind: 'connection', name: connectionId });
  }

  /** Wire channel of one group (`{prefix}{hub}:group:{groupName}`). */
  group(groupName: string): string {
    return this.build({ kind: 'group', name: groupName });
  }

  /** Wire channel of one user (`{prefix}{hub}:user:{userId}`). */
  user(userId: string): string {
    return this.build({ kind: 'user', name: userId });
  }

  /** Wire channel of another server's acks, where the owner of a connection acks that server's group command. */
  ackOf(serverName: string): string {
    return this.build({ kind: 'internal:ack', name: serverName });
  }

  /**
   * Wire channel for a name read from a payload — the return channel of a client-result invocation — as
   * StackExchange.Redis does when publishing to it: the prefix written before it.
   */
  toWire(name: string): string {
    return this.channelPrefix + name;
  }

  /**
   * The channel name of a received wire channel, or `undefined` when it lacks the prefix (StackExchange.Redis drops
   * such messages).
   */
  stripPrefix(wireChannel: string): string | undefined {
    const prefix = this.channelPrefix;
    if (prefix === '') return wireChannel;
    return wireChannel.startsWith(prefix) ? wireChannel.slice(prefix.length) : undefined;
  }

  /**
   * Parses a received wire channel; `undefined` when it lacks the prefix or is not one of this hub's channels, in
   * which case the message is to be dropped.
   */
  parse(wireChannel: string): RedisChannel | undefined {
    const name = this.stripPrefix(wireChannel);
    return name === undefined ? undefined : parseRedisChannelName(this.hubName, name);
  }
}

/**
 * A server name in .NET's form `{machineName}_{32 lowercase hex}`
 * (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L810-L815:
 * `$"{Environment.MachineName}_{Guid.NewGuid():N}"`), e.g. `vm_8ca567260f444216a277fc774fd34dd6`. Other servers only
 * echo it (ack and return channels), so the machine part is for diagnostics and uniqueness comes from the GUID.
 *
 * @param machineName The host's name; the caller passes `os.hostname()`, keeping this function free of I/O.
 * @param guid A random (version 4) UUID, with or without dashes; a fresh one by default.
 */
export function createServerName(machineName: string, guid: string = randomUUID()): string {
  const hex = guid.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new TypeError(`Not a GUID: '${guid}'.`);
  return `${machineName}_${hex}`;
}
