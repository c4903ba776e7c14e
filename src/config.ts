// Over 600 lines: every environment variable's entry beside the loader that reads, checks and masks them.
/**
 * Server configuration from environment variables and/or a JSON file, validated with zod at startup.
 *
 * Each option has a key (its name in the file), an environment variable, a default and a description; the README
 * table is checked against this table by a test. The plugin's options among them are built from their descriptors
 * (`option-descriptors.ts`), so their variable, default, bounds and text are written once, with the option. Sources, weakest first: the default, the file named by
 * `CONFIG_FILE`, the environment (an empty variable counts as unset, as compose files often leave them). A bad
 * value, an unknown key in the file, or an unknown `SIGNALR_*` variable stops the server before it listens, with a
 * message naming the option and where its value came from — never showing a secret (the password of a Redis URL).
 *
 * The loader is written here rather than taken from `env-schema`/`@fastify/env`: those read the environment only,
 * through JSON Schema and Ajv coercion, so the file source, the origin of each value in messages, masked secrets,
 * `none` for no limit, refusing unknown `SIGNALR_*` variables and "did you mean" hints would all still be ours, and
 * the zod schemas the plugin validates with would have to be written again as JSON Schema.
 *
 * `serverConfigOptions` are the settings of any server of this library; an application adds its own (the chat
 * sample adds `hubName`) and loads them together with {@link loadConfig}.
 */
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { hubConnectionOptionDescriptors as hub } from './hub/hub-options';
import {
  RedisConfigurationError,
  isRedisUrl,
  parseConnectionString,
  parseRedisUrl,
  type RedisTlsOptions,
} from './redis/redis-config';
import type { OptionDescriptor } from './shared/option-descriptors';
import type { SignalROptions } from './options';
import { redisOptionDescriptors as redis, redisPresenceOptionDescriptors as presence } from './redis/redis-options';
import {
  httpDispatcherOptionDescriptors as http,
  httpServerOptionDescriptors as server,
} from './connections/dispatcher-options';
import type { SignalRErrorCode } from './shared/errors';

/** One configuration option. */
export interface ConfigOption<T> {
  /** The environment variable that sets it. */
  readonly env: string;
  /** What it does (the README says the same). */
  readonly description: string;
  /** Its value when neither the file nor the environment sets it. */
  readonly default: T;
  /** How the README writes the default. */
  readonly defaultText: string;
  /** Validates a value (a JSON value from the file, or the environment text after `fromEnv`). */
  readonly schema: z.ZodType<T>;
  /** Turns the environment's text into the value the schema checks (a number, a boolean, a list). */
  readonly fromEnv: (text: string) => unknown;
  /** Whether the value must never be shown (it is masked in messages and logs). */
  readonly secret?: boolean;
  /** How a secret is masked. @default its Redis password masked (URL user info, connection string `password=`) */
  readonly mask?: (value: string) => string;
}

/** A table of options by key. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ConfigTable = Readonly<Record<string, ConfigOption<any>>>;

/** The values of a table's options. */
export type ConfigValues<T extends ConfigTable> = {
  readonly [K in keyof T]: T[K]['default'] | z.output<T[K]['schema']>;
};

/** A configuration that cannot be used; the message lists every problem, one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** Environment variables starting with this are ours: an unknown one is a mistake (a typo), not someone else's. */
export const RESERVED_ENV_PREFIX = 'SIGNALR_';
/** The environment variable naming the configuration file. */
export const CONFIG_FILE_ENV = 'CONFIG_FILE';

// -- option builders -------------------------------------------------------------------------------------------

const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const numberFromEnv = (text: string): unknown => (NUMBER_TEXT.test(text.trim()) ? Number(text.trim()) : text);
const NONE_TEXT = /^(none|null|unlimited)$/i;

function integerMessage(min: number, max: number | undefined): string {
  if (min === 1 && max === undefined) return 'must be a positive integer';
  return `must be ${max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`}`;
}

function integerSchema(min: number, max: number | undefined, message = integerMessage(min, max)) {
  let schema = z.number({ error: message }).int({ error: message }).min(min, { error: message });
  if (max !== undefined) schema = schema.max(max, { error: message });
  return schema;
}

/** An integer option. */
export function integerOption(
  env: string,
  description: string,
  defaultValue: number,
  range: { min: number; max?: number },
): ConfigOption<number> {
  return {
    env,
    description,
    default: defaultValue,
    defaultText: String(defaultValue),
    schema: integerSchema(range.min, range.max),
    fromEnv: numberFromEnv,
  };
}

/** An integer option that may be `null` ("none": no limit); the environment writes that `none`. */
export function limitOption(
  env: string,
  description: string,
  defaultValue: number | null,
  range: { min: number },
): ConfigOption<number | null> {
  return {
    env,
    description,
    default: defaultValue,
    defaultText: defaultValue === null ? 'none' : String(defaultValue),
    schema: z.union(
      [integerSchema(range.min, undefined, `${integerMessage(range.min, undefined)} or none`), z.null()],
      {
        error: `${integerMessage(range.min, undefined)} or none`,
      },
    ),
    fromEnv: (text) => (NONE_TEXT.test(text.trim()) ? null : numberFromEnv(text)),
  };
}

/** A boolean option; the environment writes `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`). */
export function booleanOption(env: string, description: string, defaultValue: boolean): ConfigOption<boolean> {
  return {
    env,
    description,
    default: defaultValue,
    defaultText: String(defaultValue),
    schema: z.boolean({ error: 'must be true or false' }),
    fromEnv: (text) => {
      const value = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(value)) return true;
      if (['false', '0', 'no', 'off'].includes(value)) return false;
      return text;
    },
  };
}

/** A text option. */
export function stringOption<T extends string | undefined>(
  env: string,
  description: string,
  defaultValue: T,
  schema: z.ZodType<string> = z.string({ error: 'must be a string' }),
  defaultText = defaultValue === undefined ? 'none' : defaultValue === '' ? "'' (empty)" : `\`${defaultValue}\``,
): ConfigOption<string | T> {
  return { env, description, default: defaultValue, defaultText, schema, fromEnv: (text) => text };
}

/** One of a fixed set of words. */
export function enumOption<const T extends readonly [string, ...string[]]>(
  env: string,
  description: string,
  values: T,
  defaultValue: T[number],
): ConfigOption<T[number]> {
  return {
    env,
    description,
    default: defaultValue,
    defaultText: `\`${defaultValue}\``,
    schema: z.enum(values, { error: `must be one of ${values.join(', ')}` }) as unknown as z.ZodType<T[number]>,
    fromEnv: (text) => text.trim(),
  };
}

/** A list; the environment writes it comma-separated. */
export function listOption<T>(
  env: string,
  description: string,
  item: z.ZodType<T>,
  defaultValue: readonly T[] | undefined,
  defaultText: string,
  extra?: { error: string; refine?: (list: readonly T[]) => boolean },
): ConfigOption<readonly T[] | undefined> {
  let schema: z.ZodType<readonly T[]> = z
    .array(item, { error: extra?.error ?? 'must be a list' })
    .min(1, { error: 'must not be empty' });
  if (extra?.refine !== undefined) schema = schema.refine(extra.refine, { error: extra.error });
  return {
    env,
    description,
    default: defaultValue,
    defaultText,
    schema: schema as z.ZodType<readonly T[] | undefined>,
    fromEnv: (text) =>
      text
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== ''),
  };
}

/** A path option naming a file the server must be able to read (checked at startup). */
export function fileOption(env: string, description: string): ConfigOption<string | undefined> {
  return {
    env,
    description,
    default: undefined,
    defaultText: 'none',
    schema: z.string().superRefine((file, context) => {
      try {
        if (!statSync(file).isFile()) throw new Error('not a file');
        accessSync(file, fsConstants.R_OK);
      } catch {
        context.addIssue({ code: 'custom', message: 'must name a file this server can read' });
      }
    }) as z.ZodType<string | undefined>,
    fromEnv: (text) => text.trim(),
  };
}

/** A description fragment as the environment table writes it: a sentence. */
function sentence(fragment: string): string {
  return `${fragment.charAt(0).toUpperCase()}${fragment.slice(1)}.`;
}

/**
 * The configuration option of a plugin option that has an environment variable: its variable, default, bounds and
 * description are the descriptor's.
 */
export function descriptorOption<T>(descriptor: OptionDescriptor<T>): ConfigOption<T> {
  const env = descriptor.env;
  if (env === undefined || !('default' in descriptor))
    throw new Error('the option has no environment variable or default');
  const description = sentence(descriptor.description);
  const defaultValue = descriptor.default as unknown;
  let option: ConfigOption<unknown>;
  switch (env.form.type) {
    case 'integer':
      option = integerOption(env.variable, description, defaultValue as number, env.form);
      break;
    case 'limit':
      option = limitOption(env.variable, description, defaultValue as number | null, env.form);
      break;
    case 'boolean':
      option = booleanOption(env.variable, description, defaultValue as boolean);
      break;
    case 'list': {
      const { values, noun } = env.form;
      const among = `must list ${noun} among ${values.join(', ')}`;
      option = listOption(
        env.variable,
        description,
        z.enum(values, { error: among }),
        defaultValue as readonly string[],
        `\`${(defaultValue as readonly string[]).join(',')}\``,
        { error: `${among}, each once`, refine: (list) => new Set(list).size === list.length },
      );
      break;
    }
  }
  return option as ConfigOption<T>;
}

// -- secrets ---------------------------------------------------------------------------------------------------

/** A URL with the password of its user info replaced by `***` (`redis://:***@host`, `redis://user:***@host`). */
export function maskUrlPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:)[^@/?#]*@/i, '$1***@');
}

/**
 * A Redis location with its password masked: a URL's user info, or a connection string's `password=` (up to the
 * next `,key=` item, since a password may hold a comma).
 */
export function maskRedisPassword(text: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text.trim())) return maskUrlPassword(text);
  return text.replace(/(password\s*=)[\s\S]*?(?=,\s*[A-Za-z$][\w$]*\s*=|$)/gi, '$1***');
}

/** What is wrong with a Redis location (a URL or a connection string), or `undefined` when it reads. */
function redisLocationProblem(text: string): string | undefined {
  try {
    if (isRedisUrl(text)) parseRedisUrl(text);
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text.trim())) return 'a URL must start with redis:// or rediss://';
    else parseConnectionString(text);
    return undefined;
  } catch (error) {
    if (!(error instanceof RedisConfigurationError)) return 'it cannot be read';
    // The parsers never repeat a `password=` value, but quote other items; a password in a malformed URL-like item
    // (`redis//:secret@host`) would be one of them.
    return /@|password/i.test(text) ? error.message.replace(/ \('[^']*'\)/g, '') : error.message;
  }
}

/** Origins a browser page may come from: `http(s)://host[:port]`, nothing after. */
const ORIGIN = /^https?:\/\/[^/?#\s]+$/;

// -- the server's options --------------------------------------------------------------------------------------

/** Log levels of Fastify's logger (pino). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The options of a fastify-signalr server: where it listens, logs, health, metrics, shutdown, Redis, SignalR. */
export const serverConfigOptions = {
  port: integerOption('PORT', 'TCP port the server listens on.', 5000, { min: 1, max: 65535 }),
  host: stringOption(
    'HOST',
    'Address the server listens on: loopback unless set (`0.0.0.0` for every interface, as the container image sets).',
    '127.0.0.1',
    z.string().min(1, { error: 'must not be empty' }),
  ),
  logLevel: enumOption('LOG_LEVEL', 'Lowest level logged (JSON lines on stdout).', LOG_LEVELS, 'info'),
  logRequests: booleanOption(
    'LOG_REQUESTS',
    'Whether every HTTP request is logged (tokens redacted); long polling alone makes one per client per 90 s.',
    false,
  ),
  trustProxy: booleanOption(
    'TRUST_PROXY',
    'Whether to trust `X-Forwarded-*` headers from a load balancer (client addresses in logs).',
    false,
  ),
  corsOrigins: listOption(
    'CORS_ORIGINS',
    'Origins of pages on other origins that may connect, comma-separated, or `*` for any (unsafe with cookie authentication); none: same-origin only.',
    z.string(),
    undefined,
    'none',
    {
      error: 'must be `*` or a list of origins such as https://app.example.com',
      refine: (list) => (list.length === 1 && list[0] === '*') || list.every((origin) => ORIGIN.test(origin)),
    },
  ),
  shutdownDrainTimeoutMs: integerOption(
    'SHUTDOWN_DRAIN_TIMEOUT_MS',
    'On SIGTERM/SIGINT, how long running invocations may take to finish before their connections are closed anyway.',
    5_000,
    { min: 0 },
  ),
  metricsEnabled: booleanOption('METRICS_ENABLED', 'Whether Prometheus metrics are served at `/metrics`.', true),
  readyRequiresBackplane: booleanOption(
    'READY_REQUIRES_BACKPLANE',
    'Whether `/ready` answers 503 while the Redis backplane is not connected.',
    true,
  ),
  redisUrl: {
    ...stringOption(
      'REDIS_URL',
      'The Redis backplane: a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS) or the ' +
        'StackExchange.Redis connection string of the .NET servers (`host:6380,password=…,ssl=True`); none: in ' +
        'memory, one server.',
      undefined,
      z.string().superRefine((text, context) => {
        const problem = redisLocationProblem(text);
        if (problem !== undefined) {
          context.addIssue({
            code: 'custom',
            message: `must be a redis:// or rediss:// URL or a StackExchange.Redis connection string (${problem})`,
          });
        }
      }),
    ),
    // Trimmed: a connection string pasted with spaces around it is still the same string.
    fromEnv: (text: string) => text.trim(),
    secret: true,
  },
  redisTlsCaFile: fileOption('REDIS_TLS_CA_FILE', "PEM file of the CA that signed Redis's certificate (turns TLS on)."),
  redisTlsCertFile: fileOption(
    'REDIS_TLS_CERT_FILE',
    'PEM file of a client certificate, for a Redis that asks for one.',
  ),
  redisTlsKeyFile: fileOption('REDIS_TLS_KEY_FILE', "PEM file of the client certificate's private key."),
  redisTlsServername: stringOption(
    'REDIS_TLS_SERVERNAME',
    "The name Redis's certificate must carry, when it is not the host name connected to.",
    undefined,
    z.string().min(1, { error: 'must not be empty' }),
  ),
  redisChannelPrefix: stringOption(
    'REDIS_CHANNEL_PREFIX',
    "Channel prefix of the .NET servers sharing the Redis (their `ChannelPrefix`); wins over the connection string's.",
    undefined,
    z.string(),
    "the connection string's `channelPrefix`, else none",
  ),
  redisAckTimeoutMs: descriptorOption(redis.ackTimeoutMs),
  presence: booleanOption(
    'SIGNALR_PRESENCE',
    'Presence across every server, stored in Redis (needs REDIS_URL): who is connected, users, groups, user-level groups.',
    false,
  ),
  presenceHeartbeatMs: descriptorOption(presence.heartbeatIntervalMs),
  redisMaxQueuedPublishBytes: descriptorOption(redis.maximumQueuedPublishBytes),
  redisMaxQueuedPublishAgeMs: descriptorOption(redis.maximumQueuedPublishAgeMs),
  redisMode: enumOption(
    'SIGNALR_REDIS_MODE',
    "The backplane's layout: `pubsub` (ASP.NET Core's; .NET servers can share it) or `streams` (Redis Streams, read back after any disconnection; our servers only).",
    ['pubsub', 'streams'] as const,
    'pubsub',
  ),
  redisSharded: descriptorOption(redis.shardedPubSub),
  redisStreamMaxLength: descriptorOption(redis.streamMaximumLength),
  redisStreamMaxAgeMs: descriptorOption(redis.streamMaximumAgeMs),
  managementAccessKey: {
    ...stringOption(
      'SIGNALR_MANAGEMENT_ACCESS_KEY',
      "Turns on the management REST API at `/api` (Azure SignalR Service's routes): the key its HS256 tokens are signed with, or an Azure connection string `Endpoint=…;AccessKey=…;`.",
      undefined,
      z.string().min(1, { error: 'must not be empty' }),
      'none: no management API',
    ),
    secret: true,
    mask: () => '*****',
  },
  keepAliveIntervalMs: descriptorOption(hub.keepAliveIntervalMs),
  clientTimeoutIntervalMs: descriptorOption(hub.clientTimeoutIntervalMs),
  handshakeTimeoutMs: descriptorOption(hub.handshakeTimeoutMs),
  disconnectTimeoutMs: descriptorOption(http.disconnectTimeoutMs),
  longPollTimeoutMs: descriptorOption(http.longPollTimeoutMs),
  maximumReceiveMessageSize: descriptorOption(hub.maximumReceiveMessageSize),
  maximumParallelInvocationsPerClient: descriptorOption(hub.maximumParallelInvocationsPerClient),
  maximumBufferedOutboundBytes: descriptorOption(http.maximumBufferedOutboundBytes),
  transportMaxBufferSize: descriptorOption(http.transportMaxBufferSize),
  sendTimeoutMs: descriptorOption(http.sendTimeoutMs),
  maximumStreamsPerConnection: descriptorOption(hub.maximumStreamsPerConnection),
  maximumPendingClientResultsPerConnection: descriptorOption(hub.maximumPendingClientResultsPerConnection),
  maximumPendingClientResults: descriptorOption(hub.maximumPendingClientResults),
  maximumGroupsPerConnection: descriptorOption(hub.maximumGroupsPerConnection),
  maximumGroupNameLength: descriptorOption(hub.maximumGroupNameLength),
  maximumConnections: descriptorOption(server.maximumConnections),
  transports: descriptorOption(http.transports),
  enableDetailedErrors: descriptorOption(hub.enableDetailedErrors),
  allowStatefulReconnects: descriptorOption(http.allowStatefulReconnects),
} satisfies ConfigTable;

/** The server's configuration. */
export type ServerConfig = ConfigValues<typeof serverConfigOptions>;

// -- loading ---------------------------------------------------------------------------------------------------

/** Where {@link loadConfig} reads. */
export interface ConfigSources {
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** A JSON file; overrides `CONFIG_FILE` of the environment. @default the file named by `CONFIG_FILE`, if any */
  readonly file?: string;
}

/** The closest known name, for "did you mean" hints (a small edit distance only). */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([
      `${CONFIG_FILE_ENV}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    ]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${CONFIG_FILE_ENV}: ${file} is not valid JSON (${(error as Error).message})`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`${CONFIG_FILE_ENV}: ${file} must hold a JSON object of options`]);
  }
  return parsed as Record<string, unknown>;
}

/**
 * How a bad value is shown: quoted and cut when long. A secret shows with its URL password masked — or not at all
 * when it is too malformed to find the password in but may hold one.
 */
function shown(value: unknown, secret: boolean): string {
  if (secret && typeof value === 'string') {
    const masked = maskRedisPassword(value);
    if (masked === value && value.includes('@')) return 'a value not shown (it may hold a password)';
    value = masked;
  }
  let text = JSON.stringify(value);
  if (text === undefined) text = String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Reads and validates a table of options from the environment and the configuration file; throws a
 * {@link ConfigError} naming every bad option.
 */
export function loadConfig<T extends ConfigTable>(table: T, sources: ConfigSources = {}): ConfigValues<T> {
  const env = sources.env ?? process.env;
  const file = sources.file ?? (env[CONFIG_FILE_ENV]?.trim() || undefined);
  const keys = Object.keys(table);
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};

  if (file !== undefined) {
    const values = readConfigFile(file);
    for (const [key, value] of Object.entries(values)) {
      if (!(key in table)) {
        const hint = closest(key, keys);
        problems.push(`unknown option "${key}" in ${file}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`);
        continue;
      }
      raw[key] = value;
      origin[key] = `${key} in ${file}`;
    }
  }
  const envNames = new Map(keys.map((key) => [table[key].env, key]));
  for (const [name, text] of Object.entries(env)) {
    if (text === undefined || text.trim() === '') continue;
    const key = envNames.get(name);
    if (key === undefined) {
      if (name.startsWith(RESERVED_ENV_PREFIX)) {
        const hint = closest(name, [...envNames.keys()]);
        problems.push(
          `unknown option ${name} in the environment${hint === undefined ? '' : ` (did you mean ${hint}?)`}`,
        );
      }
      continue;
    }
    raw[key] = table[key].fromEnv(text);
    origin[key] = `${name} (${key})`;
  }

  const values: Record<string, unknown> = {};
  for (const key of keys) {
    const option = table[key];
    if (!(key in raw)) {
      values[key] = option.default;
      continue;
    }
    const result = option.schema.safeParse(raw[key]);
    if (result.success) values[key] = result.data;
    else {
      const got =
        option.mask !== undefined && typeof raw[key] === 'string'
          ? 'a value not shown'
          : shown(raw[key], option.secret === true);
      problems.push(`${origin[key]}: ${result.error.issues[0]?.message ?? 'is invalid'}; got ${got}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(values) as ConfigValues<T>;
}

/** Loads the server's own options ({@link serverConfigOptions}). */
export function loadServerConfig(sources: ConfigSources = {}): ServerConfig {
  return loadConfig(serverConfigOptions, sources);
}

/** The configuration as it may be logged: every secret masked. */
export function describeConfig<T extends ConfigTable>(table: T, config: ConfigValues<T>): Record<string, unknown> {
  const described: Record<string, unknown> = {};
  for (const key of Object.keys(table)) {
    const value = (config as Record<string, unknown>)[key];
    const option = table[key];
    described[key] =
      option.secret === true && typeof value === 'string' ? (option.mask ?? maskRedisPassword)(value) : value;
  }
  return described;
}

/** The plugin options a server configuration sets (everything but the hubs). */
export function signalrOptionsFrom(config: ServerConfig): Omit<SignalROptions, 'hubs'> {
  return {
    keepAliveIntervalMs: config.keepAliveIntervalMs,
    clientTimeoutIntervalMs: config.clientTimeoutIntervalMs,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    disconnectTimeoutMs: config.disconnectTimeoutMs,
    longPollTimeoutMs: config.longPollTimeoutMs,
    maximumReceiveMessageSize: config.maximumReceiveMessageSize,
    maximumParallelInvocationsPerClient: config.maximumParallelInvocationsPerClient,
    maximumBufferedOutboundBytes: config.maximumBufferedOutboundBytes,
    transportMaxBufferSize: config.transportMaxBufferSize,
    sendTimeoutMs: config.sendTimeoutMs,
    maximumStreamsPerConnection: config.maximumStreamsPerConnection,
    maximumPendingClientResultsPerConnection: config.maximumPendingClientResultsPerConnection,
    maximumPendingClientResults: config.maximumPendingClientResults,
    maximumGroupsPerConnection: config.maximumGroupsPerConnection,
    maximumGroupNameLength: config.maximumGroupNameLength,
    maximumConnections: config.maximumConnections,
    transports: config.transports,
    enableDetailedErrors: config.enableDetailedErrors,
    allowStatefulReconnects: config.allowStatefulReconnects,
    ...(config.corsOrigins !== undefined && {
      allowedOrigins: config.corsOrigins.length === 1 && config.corsOrigins[0] === '*' ? '*' : config.corsOrigins,
    }),
    ...(config.redisUrl !== undefined && { redis: redisOptionsFrom(config, config.redisUrl) }),
    ...(config.managementAccessKey !== undefined && { management: { accessKey: config.managementAccessKey } }),
  };
}

/** The `redis` option: where Redis is, TLS files read now, the channel prefix if set, the ack timeout, the queue. */
function redisOptionsFrom(config: ServerConfig, where: string): NonNullable<SignalROptions['redis']> {
  const tls: RedisTlsOptions = {
    ...(config.redisTlsCaFile !== undefined && { ca: readFileSync(config.redisTlsCaFile) }),
    ...(config.redisTlsCertFile !== undefined && { cert: readFileSync(config.redisTlsCertFile) }),
    ...(config.redisTlsKeyFile !== undefined && { key: readFileSync(config.redisTlsKeyFile) }),
    ...(config.redisTlsServername !== undefined && { servername: config.redisTlsServername }),
  };
  return {
    ...(isRedisUrl(where) ? { url: where } : { connectionString: where }),
    ...(Object.keys(tls).length > 0 && { tls }),
    ...(config.redisChannelPrefix !== undefined && { channelPrefix: config.redisChannelPrefix }),
    ackTimeoutMs: config.redisAckTimeoutMs,
    ...(config.presence && { presence: { heartbeatIntervalMs: config.presenceHeartbeatMs } }),
    maximumQueuedPublishBytes: config.redisMaxQueuedPublishBytes,
    maximumQueuedPublishAgeMs: config.redisMaxQueuedPublishAgeMs,
    ...(config.redisSharded && { shardedPubSub: true }),
    ...(config.redisMode === 'streams' && {
      mode: 'streams' as const,
      streamMaximumLength: config.redisStreamMaxLength,
      streamMaximumAgeMs: config.redisStreamMaxAgeMs,
    }),
  };
}
