/**
 * Server configuration: environment variables and/or a JSON file (`CONFIG_FILE`), validated at startup. Every
 * mistake is refused with a message naming the option and where its value came from, never showing a secret; the
 * server process itself exits 1 before listening; the README documents every option with its real default.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chatConfigOptions } from '../../samples/chat/app';
import {
  ConfigError,
  describeConfig,
  Hub,
  loadConfig,
  loadServerConfig,
  serverConfigOptions,
  signalrOptionsFrom,
} from '../../src/index';
import { maskUrlPassword } from '../../src/config';
import { redactUrl } from '../../src/operations/logging';
import { DEFAULT_PROTOCOLS } from '../../src/plugin';
import { resolveOptions } from '../../src/options';
import { runUntilExit } from '../support/server-process';

let directory: string;

beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'config-test-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function configFile(name: string, content: string): string {
  const file = path.join(directory, name);
  writeFileSync(file, content);
  return file;
}

/** The message `loadServerConfig` refuses `env` (and `file`) with. */
function refusal(env: Record<string, string>, file?: string): string {
  try {
    loadServerConfig({ env, file });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

test('with nothing set, every option has its documented default, and the SignalR ones are the plugin’s own', () => {
  const config = loadServerConfig({ env: {} });
  for (const [key, option] of Object.entries(serverConfigOptions))
    expect({ key, value: config[key as keyof typeof config] }).toEqual({ key, value: option.default });
  expect(config).toMatchObject({
    port: 5000,
    host: '127.0.0.1',
    logLevel: 'info',
    shutdownDrainTimeoutMs: 5000,
    redisUrl: undefined,
  });

  class SomeHub extends Hub {}
  const fromConfig = resolveOptions(
    { ...signalrOptionsFrom(config), hubs: [{ path: '/hub', hub: SomeHub }] },
    DEFAULT_PROTOCOLS,
  );
  const pluginDefaults = resolveOptions({ hubs: [{ path: '/hub', hub: SomeHub }] }, DEFAULT_PROTOCOLS);
  expect(fromConfig.hubs[0]).toEqual(pluginDefaults.hubs[0]);
  expect(fromConfig.maximumConnections).toBe(pluginDefaults.maximumConnections);
  expect(fromConfig.redis).toBeNull();
});

test('the file sets options, the environment overrides it, and an empty variable counts as unset', () => {
  const file = configFile(
    'settings.json',
    JSON.stringify({
      port: 6000,
      redisUrl: 'redis://redis:6379',
      transports: ['WebSockets'],
      maximumConnections: null,
      host: '::',
    }),
  );
  const config = loadServerConfig({
    env: {
      CONFIG_FILE: file,
      PORT: '7000',
      SIGNALR_MAXIMUM_CONNECTIONS: '250',
      HOST: '',
      SIGNALR_TRANSPORTS: 'LongPolling, WebSockets',
    },
  });
  expect(config).toMatchObject({
    port: 7000,
    host: '::',
    redisUrl: 'redis://redis:6379',
    maximumConnections: 250,
    transports: ['LongPolling', 'WebSockets'],
  });
  // No channel prefix unless set: a connection string's own `channelPrefix` then applies.
  expect(signalrOptionsFrom(config)).toMatchObject({
    redis: { url: 'redis://redis:6379', ackTimeoutMs: 30000 },
    maximumConnections: 250,
  });
  expect(signalrOptionsFrom(config).redis).not.toHaveProperty('channelPrefix');
  expect(loadServerConfig({ env: { SIGNALR_MAXIMUM_CONNECTIONS: 'none', CORS_ORIGINS: '*' } })).toMatchObject({
    maximumConnections: null,
    corsOrigins: ['*'],
  });
});

test.each([
  ['a port out of range', { PORT: '70000' }, 'PORT (port): must be an integer from 1 to 65535; got 70000'],
  ['a port that is not a number', { PORT: 'http' }, 'PORT (port): must be an integer from 1 to 65535; got "http"'],
  [
    'a Redis URL of another scheme',
    { REDIS_URL: 'http://redis:6379' },
    'REDIS_URL (redisUrl): must be a redis:// or rediss:// URL or a StackExchange.Redis connection string (a URL must start with redis:// or rediss://)',
  ],
  [
    'a Redis URL that is not one',
    { REDIS_URL: 'redis://:hunter2@' },
    'REDIS_URL (redisUrl): must be a redis:// or rediss:// URL or a StackExchange.Redis connection string (The Redis URL is not a valid URL',
  ],
  [
    'a connection string with a bad value',
    { REDIS_URL: 'cache:6380,password=hunter2,ssl=maybe' },
    "REDIS_URL (redisUrl): must be a redis:// or rediss:// URL or a StackExchange.Redis connection string ('ssl' must be true or false, not 'maybe'.); got \"cache:6380,password=***,ssl=maybe\"",
  ],
  [
    'a CA file that is not there',
    { REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' },
    'REDIS_TLS_CA_FILE (redisTlsCaFile): must name a file this server can read; got "/nonexistent/ca.pem"',
  ],
  [
    'a negative limit',
    { SIGNALR_MAXIMUM_CONNECTIONS: '-5' },
    'SIGNALR_MAXIMUM_CONNECTIONS (maximumConnections): must be a positive integer or none; got -5',
  ],
  [
    'a zero interval',
    { SIGNALR_KEEP_ALIVE_INTERVAL_MS: '0' },
    'SIGNALR_KEEP_ALIVE_INTERVAL_MS (keepAliveIntervalMs): must be a positive integer; got 0',
  ],
  [
    'a fractional size',
    { SIGNALR_MAXIMUM_RECEIVE_MESSAGE_SIZE: '1.5' },
    'SIGNALR_MAXIMUM_RECEIVE_MESSAGE_SIZE (maximumReceiveMessageSize)',
  ],
  [
    'a negative drain time',
    { SHUTDOWN_DRAIN_TIMEOUT_MS: '-1' },
    'SHUTDOWN_DRAIN_TIMEOUT_MS (shutdownDrainTimeoutMs): must be an integer of at least 0; got -1',
  ],
  [
    'an unknown transport',
    { SIGNALR_TRANSPORTS: 'WebSockets,Carrier' },
    'SIGNALR_TRANSPORTS (transports): must list transports among WebSockets, ServerSentEvents, LongPolling',
  ],
  [
    'a transport twice',
    { SIGNALR_TRANSPORTS: 'WebSockets,WebSockets' },
    'SIGNALR_TRANSPORTS (transports): must list transports among WebSockets, ServerSentEvents, LongPolling, each once',
  ],
  [
    'an unknown log level',
    { LOG_LEVEL: 'verbose' },
    'LOG_LEVEL (logLevel): must be one of fatal, error, warn, info, debug, trace, silent; got "verbose"',
  ],
  [
    'a boolean that is not one',
    { METRICS_ENABLED: 'maybe' },
    'METRICS_ENABLED (metricsEnabled): must be true or false; got "maybe"',
  ],
  [
    'a CORS origin with a path',
    { CORS_ORIGINS: 'https://app.example.com/chat' },
    'CORS_ORIGINS (corsOrigins): must be `*` or a list of origins',
  ],
  [
    'a misspelt variable of ours',
    { SIGNALR_MAXIMUM_CONECTIONS: '5' },
    'unknown option SIGNALR_MAXIMUM_CONECTIONS in the environment (did you mean SIGNALR_MAXIMUM_CONNECTIONS?)',
  ],
])('%s is refused with a message naming the option', (_case, env, message) => {
  expect(refusal(env)).toContain(message);
});

test('mistakes in the file name the key and the file; unknown keys get a suggestion', () => {
  const file = configFile('bad.json', JSON.stringify({ prot: 5000, port: '5000', maximumConnections: -1 }));
  const message = refusal({}, file);
  expect(message).toContain(`unknown option "prot" in ${file} (did you mean "port"?)`);
  expect(message).toContain(`port in ${file}: must be an integer from 1 to 65535; got "5000"`);
  expect(message).toContain(`maximumConnections in ${file}: must be a positive integer or none; got -1`);
  // Every problem at once, one per line.
  expect(message.split('\n')).toHaveLength(4);
  expect(refusal({ CONFIG_FILE: path.join(directory, 'missing.json') })).toContain('CONFIG_FILE: cannot read');
  expect(refusal({}, configFile('broken.json', '{ "port": 5000,'))).toContain('is not valid JSON');
  expect(refusal({}, configFile('list.json', '[1, 2]'))).toContain('must hold a JSON object of options');
});

test('a secret is never shown, even in the message about it', () => {
  const message = refusal({ REDIS_URL: 'rediss://admin:hunter2@/0' });
  expect(message).not.toContain('hunter2');
  expect(message).toContain('"rediss://admin:***@/0"');
  // A malformed value that may hold a password is not shown at all, nor quoted in the parser's explanation.
  const malformed = refusal({ REDIS_URL: 'redis//:hunter2@redis:6379' });
  expect(malformed).not.toContain('hunter2');
  expect(malformed).toContain('got a value not shown (it may hold a password)');
  // A connection string's password, commas and all, up to the next option.
  expect(
    describeConfig(
      serverConfigOptions,
      loadServerConfig({ env: { REDIS_URL: 'cache:6380,password=hun,ter2,ssl=True' } }),
    ).redisUrl,
  ).toBe('cache:6380,password=***,ssl=True');
  expect(maskUrlPassword('redis://:p%40ss@redis:6379/2')).toBe('redis://:***@redis:6379/2');
  expect(maskUrlPassword('redis://redis:6379')).toBe('redis://redis:6379');
  expect(redactUrl('/chathub?id=abc&access_token=eyJ.x.y&transport=x')).toBe(
    '/chathub?id=[redacted]&access_token=[redacted]&transport=x',
  );
});

test('an application adds its own options to the table (the chat sample: CHAT_HUB_NAME)', () => {
  expect(loadConfig(chatConfigOptions, { env: { CHAT_HUB_NAME: 'WebAPI.ChatHub' } }).hubName).toBe('WebAPI.ChatHub');
  expect(loadConfig(chatConfigOptions, { env: {} }).hubName).toBe('ChatHub');
});

test('the README documents every option with its environment variable, key and default', () => {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of readme.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length > 4 && /^`[A-Z_]+`$/.test(cells[1])) rows.set(cells[1], cells);
  }
  for (const [key, option] of Object.entries(chatConfigOptions)) {
    expect({ key, row: rows.get(`\`${option.env}\``)?.slice(1, 4) }).toEqual({
      key,
      row: [`\`${option.env}\``, `\`${key}\``, option.defaultText],
    });
  }
});

describe('the server process refuses to start', () => {
  test.each([
    ['on a bad port', { PORT: '99999' }, 'PORT (port)'],
    [
      'with a bad Redis URL, without showing its password',
      { REDIS_URL: 'redis//:hunter2@redis:6379' },
      'REDIS_URL (redisUrl)',
    ],
    [
      'with a bad connection string, without showing its password',
      { REDIS_URL: 'cache:6380,password=hunter2,abortConnect=perhaps' },
      'REDIS_URL (redisUrl)',
    ],
    [
      'with a negative limit',
      { SIGNALR_MAXIMUM_CONNECTIONS: '-1' },
      'SIGNALR_MAXIMUM_CONNECTIONS (maximumConnections)',
    ],
    ['with an unknown option in its file', { CONFIG_FILE: '<file>' }, 'unknown option "keepAliveInterval"'],
  ])('%s', async (_case, env, expected) => {
    const settings: Record<string, string> = { ...env };
    if (settings.CONFIG_FILE === '<file>')
      settings.CONFIG_FILE = configFile('unknown.json', '{ "keepAliveInterval": 1000 }');
    const run = await runUntilExit(settings);
    expect({ code: run.code, listened: run.listened }).toEqual({ code: 1, listened: false });
    expect(run.output).toContain('Invalid configuration:');
    expect(run.output).toContain(expected);
    expect(run.output).not.toContain('hunter2');
    // The message alone: an operator's mistake gets no stack trace.
    expect(run.output).not.toMatch(/^\s+at /m);
  });
});
