/**
 * Where the backplane's Redis is and how to reach it, from any of the forms the `redis` option accepts: a
 * `redis://` / `rediss://` URL, a StackExchange.Redis connection string (what the .NET servers beside ours are
 * configured with, so a team can paste the same string), and ioredis options. Everything here is pure: it turns
 * those forms into one {@link RedisTarget} that `RedisBus` connects with, and fails with a message naming the bad
 * part — never containing a password — when a form is malformed.
 *
 * StackExchange.Redis facts used here (read in `StackExchange/StackExchange.Redis`
 * `src/StackExchange.Redis/ConfigurationOptions.cs`, `Configuration/AzureOptionsProvider.cs`): items are separated
 * by commas; an item with `=` is an option (key case-insensitive, key and value trimmed, the value is everything
 * after the first `=`), any other item is an endpoint `host[:port]`; booleans are `true`/`false`/`1`/`0` in any
 * case; without a port an endpoint gets 26379 with `serviceName` (sentinels), else 6380 with `ssl`, else 6379;
 * `abortConnect` defaults to true except for Azure Cache for Redis host names; `ssl` defaults to false except for
 * Azure host names on port 6380; `connectTimeout` and `syncTimeout` default to 5000 ms (docs/protocol.md §3.2, §3.8).
 */
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { RedisConnectionOptions as RedisOptions, RedisEndpoint } from './redis-connector';

/**
 * TLS settings for the connections to Redis (and to sentinels). Certificate verification is always on unless
 * `rejectUnauthorized` is set to `false` explicitly.
 */
export interface RedisTlsOptions {
  /** CA certificate(s) in PEM that signed the server's certificate; the system's CAs when absent. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Client certificate in PEM, for servers that require one (`tls-auth-clients yes`). */
  readonly cert?: string | Buffer;
  /** The client certificate's private key in PEM. */
  readonly key?: string | Buffer;
  /**
   * The host name the server's certificate must name, and sent as SNI (StackExchange.Redis `sslHost`).
   * @default the endpoint's host name (an IP address is checked against the certificate's IP entries)
   */
  readonly servername?: string;
  /**
   * Whether a certificate that does not verify is refused. Leave it on outside of experiments.
   * @default true
   */
  readonly rejectUnauthorized?: boolean;
}

/** A StackExchange.Redis connection string, read. */
export interface ParsedConnectionString {
  /** Endpoints in the order given, duplicates dropped; sentinels when `serviceName` is set. */
  readonly endpoints: readonly RedisEndpoint[];
  readonly ssl: boolean;
  readonly sslHost?: string;
  readonly user?: string;
  readonly password?: string;
  readonly channelPrefix?: string;
  readonly abortConnect: boolean;
  readonly connectTimeout: number;
  readonly syncTimeout: number;
  readonly defaultDatabase?: number;
  readonly serviceName?: string;
  readonly name?: string;
  /** Keys present in the string that change nothing here (unknown ones and StackExchange.Redis ones we do not use). */
  readonly ignoredKeys: readonly string[];
}

/** A bad `redis` option; the message names the bad part and never contains a password. */
export class RedisConfigurationError extends Error {
  override readonly name = 'RedisConfigurationError';
  /**
   * The stable code of this error (`errorCodes` in `src/shared/errors.ts`); a literal, as this file imports nothing but the
   * connector.
   */
  readonly code = 'SIGNALR_ERR_REDIS_CONFIGURATION' as const;
}

/** StackExchange.Redis's defaults for the timeouts (ConfigurationOptions / DefaultOptionsProvider). */
const SE_DEFAULT_TIMEOUT_MS = 5000;

/** Host name suffixes for which StackExchange.Redis applies its Azure defaults (AzureOptionsProvider). */
const AZURE_DOMAINS = [
  '.redis.cache.windows.net',
  '.redis.cache.chinacloudapi.cn',
  '.redis.cache.usgovcloudapi.net',
  '.redisenterprise.cache.azure.net',
  '.redis.azure.net',
  '.redis.chinacloudapi.cn',
  '.redis.usgovcloudapi.net',
];

/** Keys StackExchange.Redis knows that have no effect on a pub/sub backplane here; their values are still checked. */
const SE_BOOLEAN_KEYS = ['allowAdmin', 'resolveDns', 'checkCertificateRevocation', 'setlib'];
const SE_INTEGER_KEYS = ['asyncTimeout', 'keepAlive', 'connectRetry', 'configCheckSeconds'];
const SE_OTHER_KEYS = [
  'configChannel',
  'tiebreaker',
  'version',
  'proxy',
  'sslProtocols',
  'tunnel',
  'protocol',
  'highPriorityThreads',
  'preserveAsyncOrder',
  'responseTimeout',
  'writeBuffer',
];

const USED_KEYS = [
  'ssl',
  'sslHost',
  'user',
  'password',
  'channelPrefix',
  'abortConnect',
  'connectTimeout',
  'syncTimeout',
  'defaultDatabase',
  'serviceName',
  'name',
] as const;
type UsedKey = (typeof USED_KEYS)[number];

/** Canonical spelling of every key StackExchange.Redis knows, by lower case. */
const KNOWN_KEYS = new Map(
  [...USED_KEYS, ...SE_BOOLEAN_KEYS, ...SE_INTEGER_KEYS, ...SE_OTHER_KEYS].map((key) => [key.toLowerCase(), key]),
);

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

function isAzureHost(host: string): boolean {
  const lower = host.toLowerCase();
  return AZURE_DOMAINS.some((domain) => lower.endsWith(domain));
}

function parseBoolean(key: string, value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  throw new RedisConfigurationError(`'${key}' must be true or false, not '${value}'.`);
}

function parseInteger(key: string, value: string, min: number): number {
  if (!/^[+-]?\d+$/.test(value)) throw new RedisConfigurationError(`'${key}' must be an integer, not '${value}'.`);
  const number = Number(value);
  if (number < min || number > 0x7fffffff) {
    throw new RedisConfigurationError(`'${key}' must be between ${min} and 2147483647, not ${value}.`);
  }
  return number;
}

/** A port as StackExchange.Redis accepts one. */
function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; the port is `undefined` when not given. */
function parseEndpoint(item: string): { host: string; port: number | undefined } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(item);
  if (bracketed !== null) {
    if (isIP(bracketed[1]) !== 6) return undefined;
    if (bracketed[2] === undefined) return { host: bracketed[1], port: undefined };
    const port = parsePort(bracketed[2]);
    return port === undefined ? undefined : { host: bracketed[1], port };
  }
  if (isIP(item) === 6) return { host: item, port: undefined };
  const colon = item.lastIndexOf(':');
  const host = colon < 0 ? item : item.slice(0, colon);
  if (!HOST_NAME.test(host)) return undefined;
  if (colon < 0) return { host, port: undefined };
  const port = parsePort(item.slice(colon + 1));
  return port === undefined ? undefined : { host, port };
}

/** True when `text` is a `redis://` or `rediss://` URL rather than a connection string. */
export function isRedisUrl(text: string): boolean {
  return /^rediss?:\/\//i.test(text.trim());
}

/**
 * Reads a StackExchange.Redis connection string, such as `my-endpoint:6379,ssl=True,abortConnect=False` or
 * `host:6380,user=app,password=…,ssl=True,channelPrefix=ChatRoom`.
 * @throws RedisConfigurationError naming the bad item or value (a password is never repeated)
 */
export function parseConnectionString(text: string): ParsedConnectionString {
  if (text.trim() === '') throw new RedisConfigurationError('The Redis connection string is empty.');
  const values = new Map<UsedKey, string>();
  const ignored: string[] = [];
  const endpoints: { host: string; port: number | undefined }[] = [];
  // A password may itself hold a comma, which splits it; then no item is repeated in an error.
  const hasPassword = /(^|,)\s*password\s*=/i.test(text);
  const items = text.split(',');
  items.forEach((raw, index) => {
    const item = raw.trim();
    if (item === '') return;
    const equals = item.indexOf('=');
    if (equals === 0) {
      throw new RedisConfigurationError(`Item ${index + 1} of the Redis connection string has no key before '='.`);
    }
    if (equals > 0) {
      const key = item.slice(0, equals).trim();
      const value = item.slice(equals + 1).trim();
      const known = KNOWN_KEYS.get(key.toLowerCase());
      if (known !== undefined && (USED_KEYS as readonly string[]).includes(known)) {
        values.set(known as UsedKey, value);
      } else {
        // Values of keys StackExchange.Redis knows are still checked, so a string .NET refuses is refused here too.
        if (known !== undefined && SE_BOOLEAN_KEYS.includes(known)) parseBoolean(known, value);
        if (known !== undefined && SE_INTEGER_KEYS.includes(known)) parseInteger(known, value, Number.MIN_SAFE_INTEGER);
        // `$COMMAND=renamed` items rename commands in StackExchange.Redis; nothing to rename here.
        ignored.push(known ?? key);
      }
      return;
    }
    const endpoint = parseEndpoint(item);
    if (endpoint === undefined) {
      const shown = hasPassword ? `Item ${index + 1}` : `Item ${index + 1} ('${item}')`;
      throw new RedisConfigurationError(
        `${shown} of the Redis connection string is neither an endpoint 'host[:port]' nor a 'key=value' option.`,
      );
    }
    endpoints.push(endpoint);
  });
  if (endpoints.length === 0) {
    throw new RedisConfigurationError("The Redis connection string names no endpoint ('host[:port]').");
  }

  const serviceName = values.get('serviceName') || undefined;
  const sslText = values.get('ssl');
  const azure = endpoints.some((endpoint) => isAzureHost(endpoint.host));
  const ssl =
    sslText !== undefined
      ? parseBoolean('ssl', sslText)
      : azure && endpoints.some((endpoint) => endpoint.port === 6380);
  const abortText = values.get('abortConnect');
  const defaultPort = serviceName !== undefined ? 26379 : ssl ? 6380 : 6379;
  const unique = new Map<string, RedisEndpoint>();
  for (const { host, port } of endpoints) {
    const endpoint = { host, port: port ?? defaultPort };
    unique.set(`${host.toLowerCase()}:${endpoint.port}`, endpoint);
  }
  const optional = <T>(key: UsedKey, read: (value: string) => T): T | undefined => {
    const value = values.get(key);
    return value === undefined || value === '' ? undefined : read(value);
  };
  const defaultDatabase = optional('defaultDatabase', (value) => parseInteger('defaultDatabase', value, 0));
  return {
    endpoints: [...unique.values()],
    ssl,
    abortConnect: abortText !== undefined ? parseBoolean('abortConnect', abortText) : !azure,
    connectTimeout:
      optional('connectTimeout', (value) => parseInteger('connectTimeout', value, 1)) ?? SE_DEFAULT_TIMEOUT_MS,
    syncTimeout: optional('syncTimeout', (value) => parseInteger('syncTimeout', value, 1)) ?? SE_DEFAULT_TIMEOUT_MS,
    ignoredKeys: ignored,
    ...(values.get('sslHost') && { sslHost: values.get('sslHost') }),
    ...(values.get('user') && { user: values.get('user') }),
    ...(values.get('password') && { password: values.get('password') }),
    ...(values.has('channelPrefix') && { channelPrefix: values.get('channelPrefix') }),
    ...(defaultDatabase !== undefined && { defaultDatabase }),
    ...(serviceName !== undefined && { serviceName }),
    ...(values.get('name') && { name: values.get('name') }),
  };
}

/** A `redis://` or `rediss://` URL, read. */
export interface ParsedRedisUrl {
  readonly endpoint: RedisEndpoint;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
}

/**
 * Reads `redis[s]://[[user]:password@]host[:port][/db]`.
 * @throws RedisConfigurationError naming the bad part (never the password)
 */
export function parseRedisUrl(text: string): ParsedRedisUrl {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new RedisConfigurationError(
      'The Redis URL is not a valid URL (redis[s]://[user:password@]host[:port][/db]).',
    );
  }
  const scheme = url.protocol.toLowerCase();
  if (scheme !== 'redis:' && scheme !== 'rediss:') {
    throw new RedisConfigurationError(`The Redis URL must start with redis:// or rediss://, not ${scheme}//.`);
  }
  if (url.hostname === '') throw new RedisConfigurationError('The Redis URL names no host.');
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) {
    throw new RedisConfigurationError(`The Redis URL's path must be a database number, not '/${path}'.`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  return {
    endpoint: { host, port: url.port === '' ? 6379 : Number(url.port) },
    tls: scheme === 'rediss:',
    ...(username !== '' && { username }),
    ...(password !== '' && { password }),
    ...(path !== '' && { db: Number(path) }),
  };
}

/** What the `redis` option says about the connection (the part of `RedisBackplaneOptions` read here). */
export interface RedisConnectionSettings {
  readonly url?: string;
  readonly connectionString?: string;
  readonly options?: RedisOptions;
  readonly tls?: RedisTlsOptions | boolean;
  readonly abortConnect?: boolean;
}

/** Everything `RedisBus` needs to connect, with every form of the option folded in. */
export interface RedisTarget {
  /**
   * `endpoints`: connect to one of `endpoints` (a single server, or seeds of a Redis Cluster — any node serves
   * classic pub/sub for the whole cluster), moving to the next one when a connection cannot be made;
   * `sentinel`: ask the sentinels at `endpoints` for the master of `serviceName`;
   * `ioredis`: the ioredis options alone say where (a Unix socket `path`).
   */
  readonly mode: 'endpoints' | 'sentinel' | 'ioredis';
  readonly endpoints: readonly RedisEndpoint[];
  readonly serviceName?: string;
  /** ioredis options for every connection: credentials, db, TLS, timeouts, name; then the user's own. */
  readonly redisOptions: RedisOptions;
  /** Whether startup fails when Redis cannot be reached within `connectTimeoutMs`. */
  readonly abortConnect: boolean;
  readonly connectTimeoutMs: number;
  /** The user name connections authenticate as (for messages). */
  readonly username?: string;
  /** Where Redis is, for logs and errors: endpoints, mode, TLS and user, never a password. */
  readonly description: string;
  /** Warnings to log once at startup (keys of the connection string that change nothing here). */
  readonly warnings: readonly string[];
  /** The connection string's `channelPrefix`, if it has one. */
  readonly channelPrefix?: string;
  /** Secrets to blank out of any text logged or thrown (passwords). */
  readonly secrets: readonly string[];
}

/** How long a connection attempt may take when nothing says otherwise (StackExchange.Redis `connectTimeout`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = SE_DEFAULT_TIMEOUT_MS;
/** How long a publish or subscribe may wait for Redis when nothing says otherwise (StackExchange.Redis `syncTimeout`). */
export const DEFAULT_COMMAND_TIMEOUT_MS = SE_DEFAULT_TIMEOUT_MS;

function toTlsOptions(tls: RedisTlsOptions | undefined, servername: string | undefined): TlsConnectionOptions {
  const options: TlsConnectionOptions = {};
  if (tls?.ca !== undefined)
    options.ca = Array.isArray(tls.ca) ? [...(tls.ca as (string | Buffer)[])] : (tls.ca as string | Buffer);
  if (tls?.cert !== undefined) options.cert = tls.cert;
  if (tls?.key !== undefined) options.key = tls.key;
  const name = tls?.servername ?? servername;
  if (name !== undefined) options.servername = name;
  // Verification is on unless turned off in so many words.
  options.rejectUnauthorized = tls?.rejectUnauthorized !== false;
  return options;
}

function formatEndpoint(endpoint: RedisEndpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/**
 * Folds the forms of the `redis` option into one target. Precedence: the URL or connection string first, then
 * `tls`, then the ioredis `options` (they win: `host`/`port` there replace the endpoints, `sentinels` select
 * Sentinel).
 * @throws RedisConfigurationError for a malformed URL or connection string
 */
export function resolveRedisTarget(settings: RedisConnectionSettings): RedisTarget {
  if (settings.url !== undefined && settings.connectionString !== undefined) {
    throw new RedisConfigurationError('Give either a url or a connectionString, not both.');
  }
  let endpoints: RedisEndpoint[] = [];
  let serviceName: string | undefined;
  let tlsOn = false;
  let servername: string | undefined;
  let username: string | undefined;
  let password: string | undefined;
  let db: number | undefined;
  let clientName: string | undefined;
  let connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS;
  let commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS;
  let abortConnect = false;
  let channelPrefix: string | undefined;
  const warnings: string[] = [];

  if (settings.url !== undefined) {
    const url = parseRedisUrl(settings.url);
    endpoints = [url.endpoint];
    tlsOn = url.tls;
    ({ username, password, db } = url);
  } else if (settings.connectionString !== undefined) {
    const parsed = parseConnectionString(settings.connectionString);
    endpoints = [...parsed.endpoints];
    serviceName = parsed.serviceName;
    tlsOn = parsed.ssl;
    servername = parsed.sslHost;
    username = parsed.user;
    password = parsed.password;
    db = parsed.defaultDatabase;
    clientName = parsed.name;
    connectTimeoutMs = parsed.connectTimeout;
    commandTimeoutMs = parsed.syncTimeout;
    abortConnect = parsed.abortConnect;
    channelPrefix = parsed.channelPrefix;
    if (parsed.ignoredKeys.length > 0) {
      warnings.push(
        `The Redis connection string's ${parsed.ignoredKeys.map((key) => `'${key}'`).join(', ')} ` +
          `${parsed.ignoredKeys.length === 1 ? 'has' : 'have'} no effect on this server's backplane and ` +
          `${parsed.ignoredKeys.length === 1 ? 'is' : 'are'} ignored.`,
      );
    }
  }
  if (settings.tls !== undefined && settings.tls !== false) tlsOn = true;
  if (settings.tls === false) tlsOn = false;
  if (settings.abortConnect !== undefined) abortConnect = settings.abortConnect;

  const user = settings.options ?? {};
  if (user.host !== undefined || user.port !== undefined) {
    endpoints = [
      { host: user.host ?? endpoints[0]?.host ?? 'localhost', port: user.port ?? endpoints[0]?.port ?? 6379 },
    ];
  }
  if (user.sentinels !== undefined && user.sentinels.length > 0) {
    endpoints = user.sentinels.map((sentinel) => ({
      host: sentinel.host ?? 'localhost',
      port: sentinel.port ?? 26379,
    }));
    serviceName = user.name ?? serviceName;
    if (serviceName === undefined) throw new RedisConfigurationError("ioredis `sentinels` need the master's `name`.");
  }
  if (endpoints.length === 0) endpoints = [{ host: 'localhost', port: 6379 }];
  if (user.connectTimeout !== undefined) connectTimeoutMs = user.connectTimeout;
  if (user.username !== undefined) username = user.username;
  if (user.password !== undefined) password = user.password;

  const tlsSettings = typeof settings.tls === 'object' ? settings.tls : undefined;
  const tls = tlsOn ? { ...toTlsOptions(tlsSettings, servername), ...user.tls } : undefined;
  const redisOptions: RedisOptions = {
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password }),
    ...(db !== undefined && db !== 0 && { db }),
    ...(clientName !== undefined && { connectionName: clientName }),
    ...(tls !== undefined && { tls }),
    ...(serviceName !== undefined && {
      name: serviceName,
      // With TLS, sentinels are reached over TLS as well, as StackExchange.Redis does with ssl=true.
      ...(tls !== undefined && { enableTLSForSentinelMode: true, sentinelTLS: tls }),
    }),
    ...user,
  };
  // `sentinels` of the target are set by the bus from `endpoints`; the user's own list is already in them.
  delete redisOptions.sentinels;
  if (serviceName === undefined) {
    delete redisOptions.host;
    delete redisOptions.port;
  }
  const mode = user.path !== undefined ? 'ioredis' : serviceName !== undefined ? 'sentinel' : 'endpoints';
  const shown = endpoints.map(formatEndpoint);
  const description =
    (mode === 'ioredis'
      ? `unix:${user.path}`
      : mode === 'sentinel'
        ? `master '${serviceName}' via sentinel${shown.length > 1 ? 's' : ''} ${shown.join(', ')}`
        : shown.join(', ')) +
    (tls !== undefined ? ' (TLS)' : '') +
    (username !== undefined ? ` as user '${username}'` : '');
  const secrets = [password, user.sentinelPassword].filter(
    (secret): secret is string => typeof secret === 'string' && secret !== '',
  );
  return {
    mode,
    endpoints,
    ...(serviceName !== undefined && { serviceName }),
    redisOptions,
    abortConnect,
    connectTimeoutMs,
    ...(username !== undefined && { username }),
    description,
    warnings,
    ...(channelPrefix !== undefined && { channelPrefix }),
    secrets,
  };
}
