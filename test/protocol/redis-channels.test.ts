/**
 * Redis channel names (docs/protocol.md §3.2) and server names (docs/protocol.md §3.1).
 */
import {
  RedisChannels,
  createServerName,
  parseRedisChannelName,
  redisChannelName,
  type RedisChannel,
} from '../../protocol';

const HUB = 'MyApp.Hubs.ChatHub';
const SERVER = 'WEB1_02db60e5fab243b890a847fa5c4dcb29';
const CONNECTION = 'Zm9vYmFyYmF6cXV4cXV1eA';

describe('channel names: the docs/protocol.md §3.2 table', () => {
  const table: [string, (c: RedisChannels) => string, string][] = [
    ['all', (c) => c.all, 'MyApp.Hubs.ChatHub:all'],
    ['groups cmd', (c) => c.groupManagement, 'MyApp.Hubs.ChatHub:internal:groups'],
    ['ack', (c) => c.ack, `MyApp.Hubs.ChatHub:internal:ack:${SERVER}`],
    ['return', (c) => c.returnResults, `MyApp.Hubs.ChatHub:internal:return:${SERVER}`],
    ['connection', (c) => c.connection(CONNECTION), `MyApp.Hubs.ChatHub:connection:${CONNECTION}`],
    ['group', (c) => c.group('room1'), 'MyApp.Hubs.ChatHub:group:room1'],
    ['user', (c) => c.user('alice'), 'MyApp.Hubs.ChatHub:user:alice'],
  ];

  it.each(table)('%s, without and with the prefix myapp (no separator)', (_, channelOf, name) => {
    const plain = new RedisChannels({ hubName: HUB, serverName: SERVER });
    const prefixed = new RedisChannels({ hubName: HUB, serverName: SERVER, channelPrefix: 'myapp' });
    expect(channelOf(plain)).toBe(name);
    expect(channelOf(prefixed)).toBe(`myapp${name}`);
    // Parsing gives back what builds the channel.
    expect(plain.build(plain.parse(name) as RedisChannel)).toBe(name);
    expect(prefixed.build(prefixed.parse(`myapp${name}`) as RedisChannel)).toBe(`myapp${name}`);
    expect(redisChannelName(HUB, parseRedisChannelName(HUB, name) as RedisChannel)).toBe(name);
  });

  it('a prefix meant to end in ":" is configured with it, as for StackExchange.Redis', () => {
    expect(new RedisChannels({ hubName: HUB, serverName: SERVER, channelPrefix: 'myapp:' }).all).toBe(
      'myapp:MyApp.Hubs.ChatHub:all',
    );
  });
});

describe('channel names: inside payloads and for publishing to them', () => {
  const channels = new RedisChannels({ hubName: HUB, serverName: SERVER, channelPrefix: 'myapp' });

  it('the return channel written into invocations is unprefixed', () => {
    expect(channels.returnResultsName).toBe(`MyApp.Hubs.ChatHub:internal:return:${SERVER}`);
    expect(channels.toWire(channels.returnResultsName)).toBe(channels.returnResults);
  });

  it("acks go to the sending server's ack channel", () => {
    expect(channels.ackOf('other_0123')).toBe('myappMyApp.Hubs.ChatHub:internal:ack:other_0123');
  });

  it("subscribes at startup in .NET's order: all, internal:groups, internal:ack:{me}, internal:return:{me}", () => {
    expect(channels.serverSubscriptions()).toEqual([
      'myappMyApp.Hubs.ChatHub:all',
      'myappMyApp.Hubs.ChatHub:internal:groups',
      `myappMyApp.Hubs.ChatHub:internal:ack:${SERVER}`,
      `myappMyApp.Hubs.ChatHub:internal:return:${SERVER}`,
    ]);
  });

  it('rejects an empty hub name', () => {
    expect(() => new RedisChannels({ hubName: '', serverName: SERVER })).toThrow(TypeError);
  });
});

describe('channel names: parsing received channels', () => {
  const channels = new RedisChannels({ hubName: HUB, serverName: SERVER, channelPrefix: 'myapp' });

  it('recognises each kind and keeps the name raw, colons included', () => {
    expect(channels.parse('myappMyApp.Hubs.ChatHub:all')).toEqual({ kind: 'all' });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:internal:groups')).toEqual({ kind: 'internal:groups' });
    expect(channels.parse(`myappMyApp.Hubs.ChatHub:internal:ack:${SERVER}`)).toEqual({
      kind: 'internal:ack',
      name: SERVER,
    });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:internal:return:s')).toEqual({ kind: 'internal:return', name: 's' });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:connection:a-b_c')).toEqual({ kind: 'connection', name: 'a-b_c' });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:group:team:red')).toEqual({ kind: 'group', name: 'team:red' });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:group:internal:groups')).toEqual({
      kind: 'group',
      name: 'internal:groups',
    });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:user:ünïcode *')).toEqual({ kind: 'user', name: 'ünïcode *' });
    expect(channels.parse('myappMyApp.Hubs.ChatHub:group:')).toEqual({ kind: 'group', name: '' });
  });

  it('drops channels without the prefix, as StackExchange.Redis does', () => {
    expect(channels.stripPrefix('MyApp.Hubs.ChatHub:all')).toBeUndefined();
    expect(channels.parse('MyApp.Hubs.ChatHub:all')).toBeUndefined();
    expect(channels.parse('otherMyApp.Hubs.ChatHub:all')).toBeUndefined();
  });

  it("does not recognise other hubs, unknown kinds, or StackExchange.Redis's own channel", () => {
    for (const channel of [
      'myappMyApp.Hubs.ChatHub2:all',
      'myappMyApp.Hubs.Chat:all',
      'myappMyApp.Hubs.ChatHub',
      'myappMyApp.Hubs.ChatHub:',
      'myappMyApp.Hubs.ChatHub:all:x',
      'myappMyApp.Hubs.ChatHub:internal:groups:x',
      'myappMyApp.Hubs.ChatHub:internal:other:x',
      'myappMyApp.Hubs.ChatHub:connection',
      'myappMyApp.Hubs.ChatHub:groups:x',
      'myapp__Booksleeve_MasterChanged',
    ]) {
      expect(channels.parse(channel)).toBeUndefined();
    }
  });

  it('without a prefix, every channel is kept', () => {
    const plain = new RedisChannels({ hubName: HUB, serverName: SERVER });
    expect(plain.stripPrefix('anything')).toBe('anything');
    expect(plain.parse('MyApp.Hubs.ChatHub:user:bob')).toEqual({ kind: 'user', name: 'bob' });
  });
});

describe('server names', () => {
  it('are {machineName}_{32 lowercase hex} from a version 4 GUID', () => {
    const name = createServerName('vm');
    expect(name).toMatch(/^vm_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(name).toHaveLength(35);
    expect(createServerName('vm')).not.toBe(name);
  });

  it('take the GUID given, with or without dashes, in lower case', () => {
    expect(createServerName('WEB1', '02DB60E5-FAB2-43B8-90A8-47FA5C4DCB29')).toBe(SERVER);
    expect(createServerName('WEB1', '02db60e5fab243b890a847fa5c4dcb29')).toBe(SERVER);
    expect(createServerName('host.example.com', '02db60e5fab243b890a847fa5c4dcb29')).toBe(
      'host.example.com_02db60e5fab243b890a847fa5c4dcb29',
    );
    expect(() => createServerName('vm', 'not-a-guid')).toThrow(TypeError);
  });
});
