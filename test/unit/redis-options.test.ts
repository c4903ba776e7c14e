/**
 * The `redis` option: validation, defaults, and what registering the plugin with it does while Redis is not there
 * (the server starts, serves, reports the backplane as down, and closes promptly — or, with abortConnect, refuses to
 * start once the connect timeout has passed).
 */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { fastifySignalR, Hub } from '../../src';
import { DEFAULT_PROTOCOLS } from '../../src/plugin';
import { SignalROptionsError, resolveOptions } from '../../src/options';
import type { HubProtocol } from '../../protocol/hub-protocol';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { publishedProtocols } from '../../src/redis/redis-backplane';
import { freePort } from '../support/redis-server';

class ChatHub extends Hub {
  echo(value: unknown): unknown {
    return value;
  }
}
class OtherHub extends Hub {}

const resolve = (options: unknown) => resolveOptions(options, DEFAULT_PROTOCOLS);

test('defaults: no prefix, a 30 s ack timeout, a 16 MiB / 60 s publish queue; without the option, no backplane', () => {
  expect(resolve({ hubs: [{ path: '/chat', hub: ChatHub }] }).redis).toBeNull();
  expect(resolve({ hubs: [], redis: { url: 'redis://localhost:6379' } }).redis).toMatchObject({
    target: { mode: 'endpoints', endpoints: [{ host: 'localhost', port: 6379 }], abortConnect: false },
    channelPrefix: '',
    ackTimeoutMs: 30_000,
    publishQueue: { maximumBytes: 16 * 1024 * 1024, maximumAgeMs: 60_000 },
  });
  expect(
    resolve({ hubs: [], redis: { url: 'redis://x', maximumQueuedPublishBytes: 0, maximumQueuedPublishAgeMs: 1000 } })
      .redis,
  ).toMatchObject({ publishQueue: { maximumBytes: 0, maximumAgeMs: 1000 } });
  expect(
    resolve({ hubs: [], redis: { options: { port: 7000 }, channelPrefix: 'myapp', ackTimeoutMs: 500 } }).redis,
  ).toMatchObject({
    target: { mode: 'endpoints', endpoints: [{ host: 'localhost', port: 7000 }] },
    channelPrefix: 'myapp',
    ackTimeoutMs: 500,
  });
});

test("a hub's backplane name: its `name`, else its class name", () => {
  const { hubs } = resolve({
    hubs: [
      { path: '/a', hub: ChatHub },
      { path: '/b', hub: OtherHub, name: 'MyApp.Hubs.OtherHub' },
    ],
  });
  expect(hubs.map((hub) => hub.name)).toEqual(['ChatHub', 'MyApp.Hubs.OtherHub']);
});

test.each([
  [{}, 'needs a url, a connectionString or options'],
  [{ url: 'http://localhost:6379' }, 'must be a redis:// or rediss:// URL'],
  [{ url: 'redis://x', ackTimeoutMs: 0 }, 'ackTimeoutMs'],
  [{ url: 'redis://x', maximumQueuedPublishBytes: -1 }, 'maximumQueuedPublishBytes'],
  [{ url: 'redis://x', maximumQueuedPublishAgeMs: 0 }, 'maximumQueuedPublishAgeMs'],
  [{ url: 'redis://x', channelPrefx: 'typo' }, 'channelPrefx'],
])('invalid redis options %j are refused, naming the problem', (redis, text) => {
  expect(() => resolve({ hubs: [], redis })).toThrow(SignalROptionsError);
  expect(() => resolve({ hubs: [], redis })).toThrow(text);
});

test('two hubs with one backplane name are refused: they would share channels', () => {
  const hubs = [
    { path: '/a', hub: ChatHub, name: 'Same' },
    { path: '/b', hub: OtherHub, name: 'Same' },
  ];
  expect(() => resolve({ hubs, redis: { url: 'redis://x' } })).toThrow("two hubs named 'Same'");
  expect(() => resolve({ hubs })).not.toThrow();
});

test("published protocols: json and messagepack always, in .NET's order, then the hub's others", () => {
  const custom: HubProtocol = {
    name: 'custom',
    version: 1,
    transferFormat: 'Text',
    isVersionSupported: () => true,
    createReader: (options) => jsonHubProtocol.createReader(options),
    writeMessage: (message) => jsonHubProtocol.writeMessage(message),
  };
  expect(publishedProtocols([jsonHubProtocol]).map((protocol) => protocol.name)).toEqual(['json', 'messagepack']);
  expect(publishedProtocols([custom, jsonHubProtocol]).map((protocol) => protocol.name)).toEqual([
    'json',
    'messagepack',
    'custom',
  ]);
});

test('registered while Redis is unreachable: the server starts, serves, reports the backplane down, closes promptly', async () => {
  const port = await freePort();
  const app = Fastify({ logger: false });
  await app.register(fastifySignalR, {
    hubs: [{ path: '/chat', hub: ChatHub }],
    redis: { url: `redis://127.0.0.1:${port}` },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port: httpPort } = app.server.address() as AddressInfo;
  const negotiate = await fetch(`http://127.0.0.1:${httpPort}/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  expect(negotiate.status).toBe(200);
  const deadline = Date.now() + 5000;
  while (app.signalr.backplane?.state !== 'disconnected' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(app.signalr.backplane).toMatchObject({
    state: 'disconnected',
    connected: false,
    channelPrefix: '',
    hubs: [{ path: '/chat', name: 'ChatHub', serverName: expect.stringMatching(/_[0-9a-f]{32}$/) }],
  });
  const started = Date.now();
  await app.close();
  expect(Date.now() - started).toBeLessThan(1000);
  expect(app.signalr.backplane?.state).toBe('closed');
});

test('abortConnect: with it, registration fails when Redis stays unreachable for connectTimeout, naming where', async () => {
  const port = await freePort();
  const app = Fastify({ logger: false });
  const started = Date.now();
  await expect(
    app.register(fastifySignalR, {
      hubs: [{ path: '/chat', hub: ChatHub }],
      redis: { connectionString: `127.0.0.1:${port},password=s3cret-pw,connectTimeout=400` },
    }),
  ).rejects.toThrow(
    new RegExp(
      `^Redis backplane: could not connect to 127\\.0\\.0\\.1:${port} within 400 ms \\(last error: .*ECONNREFUSED.*\\)\\. The server does not start because abortConnect is true`,
    ),
  );
  const elapsed = Date.now() - started;
  expect(elapsed).toBeGreaterThanOrEqual(350);
  expect(elapsed).toBeLessThan(3000);
  await app.close();

  // abortConnect=false: the same string starts at once and connects when Redis is there.
  const tolerant = Fastify({ logger: false });
  await tolerant.register(fastifySignalR, {
    hubs: [{ path: '/chat', hub: ChatHub }],
    redis: { connectionString: `127.0.0.1:${port},password=s3cret-pw,connectTimeout=400,abortConnect=false` },
  });
  expect(tolerant.signalr.backplane).toMatchObject({ state: 'disconnected', redis: `127.0.0.1:${port}` });
  expect(JSON.stringify(tolerant.signalr.backplane)).not.toContain('s3cret-pw');
  await tolerant.close();
});
