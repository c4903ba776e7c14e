/**
 * The forms of the `redis` option, read into what the backplane connects with: StackExchange.Redis connection
 * strings as .NET servers are configured (ElastiCache, MemoryDB, Azure Cache for Redis, Sentinel), `redis://` /
 * `rediss://` URLs, ioredis options, and the `tls` option; malformed strings fail naming the bad part, and no error
 * or description ever holds a password.
 */
import { Hub } from '../../src';
import { DEFAULT_PROTOCOLS } from '../../src/plugin';
import { SignalROptionsError, resolveOptions } from '../../src/options';
import {
  RedisConfigurationError,
  parseConnectionString,
  parseRedisUrl,
  resolveRedisTarget,
} from '../../src/redis/redis-config';
import { chatConfigOptions } from '../../samples/chat/app';
import { loadConfig, signalrOptionsFrom } from '../../src/index';

class ChatHub extends Hub {}

const SECRET = 'pa55=word;with/odd+chars';

describe('StackExchange.Redis connection strings from the .NET world', () => {
  test('host:6379,ssl=True,abortConnect=False (ElastiCache with encryption in transit)', () => {
    expect(parseConnectionString('my-endpoint.cache.amazonaws.com:6379,ssl=True,abortConnect=False')).toEqual({
      endpoints: [{ host: 'my-endpoint.cache.amazonaws.com', port: 6379 }],
      ssl: true,
      abortConnect: false,
      connectTimeout: 5000,
      syncTimeout: 5000,
      ignoredKeys: [],
    });
  });

  test('host:6380,password=…,ssl=True,abortConnect=False (Azure Cache for Redis with an access key)', () => {
    expect(
      parseConnectionString(`contoso.redis.cache.windows.net:6380,password=${SECRET},ssl=True,abortConnect=False`),
    ).toEqual({
      endpoints: [{ host: 'contoso.redis.cache.windows.net', port: 6380 }],
      ssl: true,
      password: SECRET,
      abortConnect: false,
      connectTimeout: 5000,
      syncTimeout: 5000,
      ignoredKeys: [],
    });
  });

  test('host:6379,user=…,password=…,ssl=True,channelPrefix=ChatRoom (MemoryDB with an ACL user)', () => {
    expect(
      parseConnectionString(
        `clustercfg.chat.memorydb.us-east-1.amazonaws.com:6379,user=user1,password=${SECRET},ssl=True,channelPrefix=ChatRoom`,
      ),
    ).toEqual({
      endpoints: [{ host: 'clustercfg.chat.memorydb.us-east-1.amazonaws.com', port: 6379 }],
      ssl: true,
      user: 'user1',
      password: SECRET,
      channelPrefix: 'ChatRoom',
      // StackExchange.Redis aborts on a failed first connect unless told otherwise (and the host is not Azure's).
      abortConnect: true,
      connectTimeout: 5000,
      syncTimeout: 5000,
      ignoredKeys: [],
    });
  });

  test('several endpoints, Sentinel, timeouts, database and client name; keys in any case, items padded', () => {
    expect(
      parseConnectionString(
        ' sentinel-1 , sentinel-2:26380 ,SERVICENAME=mymaster, ConnectTimeout=2000 ,syncTimeout=1500,defaultDatabase=2,name=chat-web,abortconnect=false',
      ),
    ).toEqual({
      endpoints: [
        { host: 'sentinel-1', port: 26379 },
        { host: 'sentinel-2', port: 26380 },
      ],
      serviceName: 'mymaster',
      ssl: false,
      abortConnect: false,
      connectTimeout: 2000,
      syncTimeout: 1500,
      defaultDatabase: 2,
      name: 'chat-web',
      ignoredKeys: [],
    });
  });

  test('default ports as StackExchange.Redis: 6379, 6380 with ssl, 26379 with serviceName; IPv6; duplicates once', () => {
    expect(parseConnectionString('a,b:7000,[::1]:7001,::1,a:6379').endpoints).toEqual([
      { host: 'a', port: 6379 },
      { host: 'b', port: 7000 },
      { host: '::1', port: 7001 },
      { host: '::1', port: 6379 },
    ]);
    expect(parseConnectionString('a,ssl=true').endpoints).toEqual([{ host: 'a', port: 6380 }]);
  });

  test('Azure host names: ssl on port 6380 and abortConnect=false unless said otherwise', () => {
    const azure = parseConnectionString('contoso.redis.cache.windows.net:6380,password=x');
    expect([azure.ssl, azure.abortConnect]).toEqual([true, false]);
    const plain = parseConnectionString('redis.internal:6380,password=x');
    expect([plain.ssl, plain.abortConnect]).toEqual([false, true]);
  });

  test('keys this backplane does not use, and unknown keys, are ignored and listed once', () => {
    const parsed = parseConnectionString(
      'h,allowAdmin=true,keepAlive=60,connectRetry=3,tiebreaker=,$INFO=,somethingNew=1',
    );
    expect(parsed.ignoredKeys).toEqual([
      'allowAdmin',
      'keepAlive',
      'connectRetry',
      'tiebreaker',
      '$INFO',
      'somethingNew',
    ]);
    const target = resolveRedisTarget({ connectionString: 'h,allowAdmin=true,somethingNew=1' });
    expect(target.warnings).toEqual([
      "The Redis connection string's 'allowAdmin', 'somethingNew' have no effect on this server's backplane and are ignored.",
    ]);
  });

  test.each([
    ['', 'The Redis connection string is empty.'],
    ['ssl=true', "names no endpoint ('host[:port]')"],
    ['h:port', "Item 1 ('h:port') of the Redis connection string is neither an endpoint"],
    ['h,bad host', "Item 2 ('bad host')"],
    ['h:70000', "Item 1 ('h:70000')"],
    ['h,=x', 'Item 2 of the Redis connection string has no key'],
    ['h,ssl=yes', "'ssl' must be true or false, not 'yes'."],
    ['h,abortConnect=maybe', "'abortConnect' must be true or false"],
    ['h,connectTimeout=5s', "'connectTimeout' must be an integer, not '5s'."],
    ['h,syncTimeout=0', "'syncTimeout' must be between 1 and 2147483647, not 0."],
    ['h,defaultDatabase=-1', "'defaultDatabase' must be between 0"],
    ['h,allowAdmin=sure', "'allowAdmin' must be true or false"],
  ])('malformed %j fails naming the bad part', (text, message) => {
    expect(() => parseConnectionString(text)).toThrow(RedisConfigurationError);
    expect(() => parseConnectionString(text)).toThrow(message);
  });

  test('a password split by a comma is never repeated in the error', () => {
    // StackExchange.Redis has no escaping: a comma ends the item, so the rest of the password looks like an endpoint.
    const text = 'h:6379,password=abc,d$f!g,ssl=true';
    expect(() => parseConnectionString(text)).toThrow('Item 3 of the Redis connection string is neither');
    let message = '';
    try {
      parseConnectionString(text);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toContain('d$f!g');
  });
});

describe('targets: what the backplane connects with', () => {
  test('the MemoryDB string: TLS with verification on, the ACL user, the prefix; the description has no password', () => {
    const target = resolveRedisTarget({
      connectionString: `mem.example.com:6379,user=user1,password=${SECRET},ssl=True,channelPrefix=ChatRoom`,
    });
    expect(target).toMatchObject({
      mode: 'endpoints',
      endpoints: [{ host: 'mem.example.com', port: 6379 }],
      abortConnect: true,
      connectTimeoutMs: 5000,
      channelPrefix: 'ChatRoom',
      description: "mem.example.com:6379 (TLS) as user 'user1'",
      redisOptions: {
        username: 'user1',
        password: SECRET,
        tls: { rejectUnauthorized: true },
        connectTimeout: 5000,
        commandTimeout: 5000,
      },
    });
    expect(target.description).not.toContain(SECRET);
  });

  test('sslHost, the tls option (CA, client certificate) and name', () => {
    const target = resolveRedisTarget({
      connectionString: '10.0.0.5:6380,ssl=true,sslHost=redis.internal,name=web1,defaultDatabase=3,syncTimeout=2500',
      tls: { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' },
    });
    expect(target.redisOptions).toMatchObject({
      tls: { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', servername: 'redis.internal', rejectUnauthorized: true },
      connectionName: 'web1',
      db: 3,
      commandTimeout: 2500,
    });
  });

  test('Sentinel: the endpoints are sentinels, the service name is the master', () => {
    const target = resolveRedisTarget({
      connectionString: 's1:26379,s2:26379,serviceName=mymaster,password=x,abortConnect=false',
    });
    expect(target).toMatchObject({
      mode: 'sentinel',
      serviceName: 'mymaster',
      endpoints: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      description: "master 'mymaster' via sentinels s1:26379, s2:26379",
      redisOptions: { name: 'mymaster', password: 'x' },
    });
  });

  test('URLs: rediss:// turns TLS on; user, password and database come from the URL', () => {
    expect(parseRedisUrl(`rediss://user1:${encodeURIComponent(SECRET)}@h.example.com:6380/2`)).toEqual({
      endpoint: { host: 'h.example.com', port: 6380 },
      tls: true,
      username: 'user1',
      password: SECRET,
      db: 2,
    });
    const target = resolveRedisTarget({ url: 'redis://:pw@127.0.0.1' });
    expect(target).toMatchObject({
      endpoints: [{ host: '127.0.0.1', port: 6379 }],
      abortConnect: false,
      description: '127.0.0.1:6379',
    });
    expect(target.redisOptions.tls).toBeUndefined();
    expect(() => parseRedisUrl('redis://h/abc')).toThrow("path must be a database number, not '/abc'");
  });

  test('ioredis options win: host and port, sentinels, tls; certificate verification can only be turned off explicitly', () => {
    expect(resolveRedisTarget({ url: 'redis://a:1', options: { host: 'b', port: 2 } }).endpoints).toEqual([
      { host: 'b', port: 2 },
    ]);
    expect(resolveRedisTarget({ options: { sentinels: [{ host: 's', port: 26379 }], name: 'm' } })).toMatchObject({
      mode: 'sentinel',
      serviceName: 'm',
    });
    expect(
      resolveRedisTarget({ url: 'rediss://a', tls: { rejectUnauthorized: false } }).redisOptions.tls,
    ).toMatchObject({ rejectUnauthorized: false });
    expect(resolveRedisTarget({ url: 'redis://a', tls: true }).redisOptions.tls).toEqual({ rejectUnauthorized: true });
    expect(resolveRedisTarget({ url: 'rediss://a', tls: false }).redisOptions.tls).toBeUndefined();
  });
});

describe('the redis option', () => {
  const resolve = (redis: unknown) =>
    resolveOptions({ hubs: [{ path: '/chat', hub: ChatHub }], redis }, DEFAULT_PROTOCOLS);

  test('connectionString: its channelPrefix applies unless channelPrefix is given', () => {
    expect(resolve({ connectionString: 'h,channelPrefix=ChatRoom' }).redis).toMatchObject({
      channelPrefix: 'ChatRoom',
    });
    expect(resolve({ connectionString: 'h,channelPrefix=ChatRoom', channelPrefix: 'Other' }).redis).toMatchObject({
      channelPrefix: 'Other',
    });
  });

  test('a malformed connection string fails registration naming the bad part, without the password', () => {
    let message = '';
    try {
      resolve({ connectionString: `h:port,password=${SECRET}` });
    } catch (error) {
      expect(error).toBeInstanceOf(SignalROptionsError);
      message = (error as Error).message;
    }
    expect(message).toBe(
      'Invalid fastify-signalr options: redis: Item 1 of the Redis connection string is neither an endpoint ' +
        "'host[:port]' nor a 'key=value' option.",
    );
  });

  test.each([
    [{ url: 'h:6379,ssl=true' }, 'give a StackExchange.Redis connection string as connectionString'],
    [{ url: 'redis://a', connectionString: 'a' }, 'takes a url or a connectionString, not both'],
    [{ connectionString: 'a', tls: { ca: 5 } }, 'must be PEM text'],
    [{ connectionString: 'a', tls: { servername: '' } }, 'servername'],
    [{ connectionString: 'a', abortConnect: 'no' }, 'abortConnect'],
  ])('%j is refused', (redis, text) => {
    expect(() => resolve(redis)).toThrow(text);
  });
});

describe("the chat sample's environment", () => {
  /** The `redis` option the chat server builds from its configuration. */
  const redisFromEnvironment = (env: NodeJS.ProcessEnv) =>
    signalrOptionsFrom(loadConfig(chatConfigOptions, { env })).redis;

  test('REDIS_URL takes a URL or a connection string; REDIS_CHANNEL_PREFIX only when set', () => {
    const queue = { maximumQueuedPublishBytes: 16 * 1024 * 1024, maximumQueuedPublishAgeMs: 60_000 };
    expect(redisFromEnvironment({ REDIS_URL: 'rediss://h:6380' })).toEqual({
      url: 'rediss://h:6380',
      ackTimeoutMs: 30000,
      ...queue,
    });
    expect(redisFromEnvironment({ REDIS_URL: ' h:6380,password=x,ssl=True ', REDIS_CHANNEL_PREFIX: 'p' })).toEqual({
      connectionString: 'h:6380,password=x,ssl=True',
      channelPrefix: 'p',
      ackTimeoutMs: 30000,
      ...queue,
    });
    expect(
      redisFromEnvironment({
        REDIS_URL: 'redis://h',
        REDIS_MAX_QUEUED_PUBLISH_BYTES: '0',
        REDIS_MAX_QUEUED_PUBLISH_AGE_MS: '5000',
      }),
    ).toMatchObject({ maximumQueuedPublishBytes: 0, maximumQueuedPublishAgeMs: 5000 });
    expect(redisFromEnvironment({})).toBeUndefined();
  });

  test('SIGNALR_REDIS_MODE=streams turns streams mode on, with its retention; pubsub (the default) adds nothing', () => {
    expect(redisFromEnvironment({ REDIS_URL: 'redis://h', SIGNALR_REDIS_MODE: 'streams' })).toMatchObject({
      mode: 'streams',
      streamMaximumLength: 100_000,
      streamMaximumAgeMs: 60_000,
    });
    expect(
      redisFromEnvironment({
        REDIS_URL: 'redis://h',
        SIGNALR_REDIS_MODE: 'streams',
        REDIS_STREAM_MAX_LENGTH: '500',
        REDIS_STREAM_MAX_AGE_MS: '2000',
      }),
    ).toMatchObject({ mode: 'streams', streamMaximumLength: 500, streamMaximumAgeMs: 2000 });
    expect(redisFromEnvironment({ REDIS_URL: 'redis://h', SIGNALR_REDIS_MODE: 'pubsub' })).not.toHaveProperty('mode');
    expect(() => redisFromEnvironment({ REDIS_URL: 'redis://h', SIGNALR_REDIS_MODE: 'kafka' })).toThrow(
      'SIGNALR_REDIS_MODE',
    );
  });

  test('SIGNALR_REDIS_SHARDED=true turns sharded pub/sub on; false (the default) adds nothing', () => {
    expect(redisFromEnvironment({ REDIS_URL: 'h1:7000,h2:7001', SIGNALR_REDIS_SHARDED: 'true' })).toMatchObject({
      shardedPubSub: true,
    });
    expect(redisFromEnvironment({ REDIS_URL: 'redis://h', SIGNALR_REDIS_SHARDED: 'false' })).not.toHaveProperty(
      'shardedPubSub',
    );
    expect(() => redisFromEnvironment({ REDIS_URL: 'redis://h', SIGNALR_REDIS_SHARDED: 'maybe' })).toThrow(
      'SIGNALR_REDIS_SHARDED',
    );
  });

  test('shardedPubSub is refused at registration with Sentinel, a Unix socket and streams mode', () => {
    const refused = (redis: object) => {
      try {
        resolveOptions({ hubs: [{ path: '/h', hub: ChatHub }], redis } as never, DEFAULT_PROTOCOLS);
      } catch (error) {
        return { name: (error as Error).name, code: (error as { code?: string }).code };
      }
      return 'accepted';
    };
    const expected = { name: 'RedisShardedPubSubError', code: 'SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER' };
    expect(refused({ connectionString: 's1:26379,serviceName=mymaster', shardedPubSub: true })).toEqual(expected);
    expect(refused({ options: { path: '/tmp/redis.sock' }, shardedPubSub: true })).toEqual(expected);
    expect(refused({ url: 'redis://h:7000', mode: 'streams', shardedPubSub: true })).toEqual(expected);
    expect(refused({ url: 'redis://h:7000', shardedPubSub: true })).toBe('accepted');
  });

  test('REDIS_TLS_* read the PEM files and the server name', () => {
    const redis = redisFromEnvironment({
      REDIS_URL: 'h,ssl=true',
      REDIS_TLS_CA_FILE: __filename,
      REDIS_TLS_SERVERNAME: 'redis.internal',
    });
    expect(redis?.tls).toMatchObject({ servername: 'redis.internal' });
    expect(Buffer.isBuffer((redis?.tls as { ca: unknown }).ca)).toBe(true);
  });
});
