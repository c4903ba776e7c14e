/**
 * The admin page in real headless Chromium, against the chat sample with real official clients on it: refused
 * without credentials; new clients shown and gone ones dropped within a second; rates and invocation counts that
 * move under traffic; a live trace of a group; close, send and remove-from-group reaching their targets; two servers
 * on one Redis with presence, both shown, and a group spread over them. Each view is saved as a screenshot in
 * `.tmp/admin-page/`; `UPDATE_SCREENSHOTS=1` also writes the overview to `docs/admin.png`, which the README shows.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as signalR from '@microsoft/signalr';
import type { Browser, Page } from 'playwright-core';
import Fastify from 'fastify';
import { ADMIN_USER, basicAuthAdmin, buildChatApp, chatConfigOptions } from '../../samples/chat/app';
import { loadConfig } from '../../src/index';
import { fastifySignalR, Hub } from '../../src/index';
import { launchBrowser } from '../support/browser';
import { ClientPool, eventually, type TestClient } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { listen, type RunningServer } from '../support/servers';

const USER = ADMIN_USER;
const PASSWORD = 'admin-page-test-password';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SCREENSHOTS = path.resolve(__dirname, '../../.tmp/admin-page');
const DOCS = path.resolve(__dirname, '../../docs');

let browser: Browser;
beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  // The README shows the overview.
  if (process.env.UPDATE_SCREENSHOTS === '1' && name === 'admin')
    await page.screenshot({ path: path.join(DOCS, 'admin.png'), fullPage: true });
}

async function openAdmin(server: RunningServer, viewport = { width: 1100, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(`${server.url}/signalr-admin/`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Connected', undefined, {
    timeout: 10_000,
  });
  return page;
}

async function view(page: Page, name: string): Promise<void> {
  await page.click(`#views button[data-view="${name}"]`);
}

async function confirm(page: Page): Promise<void> {
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-yes');
}

describe('one server', () => {
  let server: RunningServer;
  let pool: ClientPool;
  /** The server's log lines, as JSON. */
  const logLines: Record<string, unknown>[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const actions = () => logLines.filter((line) => line.event === 'signalr.admin.action');

  beforeAll(async () => {
    // The chat sample as `SIGNALR_ADMIN_PASSWORD` configures it.
    const app = await buildChatApp({
      fastify: { logger: { level: 'info', stream: logStream } },
      adminPassword: loadConfig(chatConfigOptions, { env: { SIGNALR_ADMIN_PASSWORD: PASSWORD } }).adminPassword,
    });
    server = await listen(app);
    pool = new ClientPool(() => server.hubUrl);
  });
  afterAll(async () => {
    await pool?.stopAll();
    await server?.close();
  });

  test('the page and the admin hub refuse requests without the password: 401 with the challenge', async () => {
    for (const url of ['/signalr-admin/', '/signalr-admin/admin.js', '/signalr-admin/lib/signalr.min.js']) {
      const response = await fetch(`${server.url}${url}`);
      expect([url, response.status]).toEqual([url, 401]);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="signalr-admin", charset="UTF-8"');
    }
    const negotiate = await fetch(`${server.url}/signalr-admin/hub/negotiate?negotiateVersion=1`, { method: 'POST' });
    expect(negotiate.status).toBe(401);
    const wrong = await fetch(`${server.url}/signalr-admin/hub/negotiate?negotiateVersion=1`, {
      method: 'POST',
      headers: { authorization: basic(USER, 'wrong') },
    });
    expect(wrong.status).toBe(401);
    const allowed = await fetch(`${server.url}/signalr-admin/hub/negotiate?negotiateVersion=1`, {
      method: 'POST',
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(allowed.status).toBe(200);
    // The chat hub itself is not behind the admin password.
    expect((await fetch(`${server.url}/chathub/negotiate?negotiateVersion=1`, { method: 'POST' })).status).toBe(200);
  });

  test('a new client is shown within a second of connecting and dropped within a second of leaving', async () => {
    const page = await openAdmin(server);
    try {
      await view(page, 'connections');
      const client = await pool.connect({ query: 'user=newcomer' });
      const id = client.connection.connectionId!;
      const connected = Date.now();
      await page.waitForSelector(`#connections tr[data-connection-id="${id}"]`, { timeout: 5_000 });
      expect(Date.now() - connected).toBeLessThan(1000);
      expect(await page.textContent(`#connections tr[data-connection-id="${id}"]`)).toContain('newcomer');
      await page.click(`#connections tr[data-connection-id="${id}"]`);
      await page.waitForFunction(
        (expected) => document.getElementById('details-list')?.textContent?.includes(expected),
        'newcomer',
      );
      await screenshot(page, 'admin-connections');
      await client.connection.stop();
      const left = Date.now();
      await page.waitForSelector(`#connections tr[data-connection-id="${id}"]`, { state: 'detached', timeout: 5_000 });
      expect(Date.now() - left).toBeLessThan(1000);
    } finally {
      await page.context().close();
    }
  });

  test('rates and invocation counts move under traffic', async () => {
    const page = await openAdmin(server);
    const sender = await pool.connect({ query: 'user=sender' });
    const listener = await pool.connect({ query: 'user=listener' });
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        await Promise.all(
          Array.from({ length: 20 }, () => sender.connection.invoke('SendMessage', 'sender', 'traffic')),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await page.waitForFunction(
        () =>
          Number(document.getElementById('rate-in')?.textContent) > 10 &&
          Number(document.getElementById('rate-out')?.textContent) > 10,
        undefined,
        { timeout: 10_000 },
      );
      await page.waitForFunction(
        () =>
          Number(document.querySelector('#methods tr[data-method="sendMessage"] td:nth-child(2)')?.textContent) > 20,
      );
      expect(Number(await page.textContent('#hub-connections'))).toBeGreaterThanOrEqual(2);
      // A few seconds of the chart, for the screenshot.
      await page.waitForFunction(
        () =>
          document.querySelectorAll('#chart .u-over').length === 1 &&
          Number(document.getElementById('chart')?.dataset.points) >= 6,
        undefined,
        { timeout: 15_000 },
      );
      expect(await page.textContent('#transports tbody')).toContain('WebSockets');
      await screenshot(page, 'admin');
    } finally {
      sending = false;
      await traffic;
      await sender.connection.stop();
      await listener.connection.stop();
      await page.context().close();
    }
    // The counts stop moving with the traffic.
    const page2 = await openAdmin(server);
    try {
      await page2.waitForFunction(() => document.getElementById('rate-in')?.textContent === '0', undefined, {
        timeout: 10_000,
      });
    } finally {
      await page2.context().close();
    }
  });

  test('a live trace of a group shows a message sent to that group, with its method and arguments', async () => {
    const page = await openAdmin(server);
    const member = await pool.connect({ query: 'user=member' });
    const sender = await pool.connect({ query: 'user=outsider' });
    try {
      await member.connection.invoke('JoinRoom', 'lobby');
      await view(page, 'groups');
      await page.fill('#group-search', 'lob');
      await page.waitForSelector('#groups tr[data-group="lobby"]');
      expect(await page.textContent('#groups tr[data-group="lobby"]')).toContain('1');
      await screenshot(page, 'admin-groups');
      await page.click('#groups tr[data-group="lobby"] button');
      expect(await page.inputValue('#trace-target')).toBe('lobby');
      await page.click('#trace-start');
      await page.waitForFunction(() => document.getElementById('trace-status')?.textContent?.startsWith('Tracing'));
      await sender.connection.invoke('SendToRoom', 'lobby', 'outsider', 'hello trace');
      await member.inbox('ReceiveMessage').waitFor(1);
      await page.waitForFunction(() => document.getElementById('trace-log')?.textContent?.includes('hello trace'));
      const row = await page.textContent('#trace-log tbody tr');
      expect(row).toContain('ReceiveMessage');
      expect(row).toContain('["outsider","hello trace"]');
      expect(row).toContain(member.connection.connectionId!);
      // The sender is not in the group: its own invocation is not traced.
      expect(await page.textContent('#trace-log')).not.toContain('SendToRoom');
      await screenshot(page, 'admin-trace');
      await page.click('#trace-pause');
      await sender.connection.invoke('SendToRoom', 'lobby', 'outsider', 'while paused');
      await member.inbox('ReceiveMessage').waitFor(2);
      await page.click('#trace-clear');
      expect(await page.$$('#trace-log tbody tr')).toHaveLength(0);
      await page.click('#trace-stop');
      await page.waitForFunction(() => document.getElementById('trace-status')?.textContent === 'Stopped');
      const endpoint = server.app.signalr.endpoints[0]!;
      expect(endpoint.stats.tracer).toBeNull();
    } finally {
      await member.connection.stop();
      await sender.connection.stop();
      await page.context().close();
    }
  });

  test('send, remove from a group and close, each confirmed, reach their target', async () => {
    const page = await openAdmin(server, { width: 380, height: 800 });
    const target = await pool.connect({ query: 'user=target' });
    const id = target.connection.connectionId!;
    try {
      await target.connection.invoke('JoinRoom', 'vip');
      // Send to the connection.
      await view(page, 'send');
      await page.selectOption('#send-kind', 'connection');
      await page.fill('#send-target', id);
      await page.fill('#send-args', '["admin", "hello from the admin page"]');
      await page.click('#send-button');
      await confirm(page);
      expect(await target.inbox('ReceiveMessage').waitFor(1)).toEqual([['admin', 'hello from the admin page']]);
      await page.waitForFunction(() =>
        document.getElementById('action-log')?.textContent?.includes('Sent ReceiveMessage'),
      );
      await screenshot(page, 'admin-send-narrow');
      // A phone's width: nothing wider than the window but the tables' own scrolling boxes.
      for (const name of ['overview', 'connections', 'groups', 'trace', 'send']) {
        await view(page, name);
        expect([name, await page.evaluate(() => document.documentElement.scrollWidth)]).toEqual([name, 380]);
      }
      // Send to the group.
      await page.selectOption('#send-kind', 'group');
      await page.fill('#send-target', 'vip');
      await page.fill('#send-args', '["admin", "to the vip room"]');
      await page.click('#send-button');
      await confirm(page);
      expect((await target.inbox('ReceiveMessage').waitFor(2))[1]).toEqual(['admin', 'to the vip room']);
      // Remove from the group.
      await view(page, 'connections');
      await page.click(`#connections tr[data-connection-id="${id}"]`);
      await page.waitForSelector('#details-groups li[data-group="vip"] button');
      await page.click('#details-groups li[data-group="vip"] button');
      await confirm(page);
      await page.waitForSelector('#details-groups li[data-group="vip"]', { state: 'detached' });
      expect(await server.app.signalr.endpoints[0]!.presence.groupsOf(id)).toEqual([]);
      // Close, reconnect not allowed: a cancelled confirmation does nothing.
      await page.uncheck('#close-allow-reconnect');
      await page.click('#close-connection');
      await page.click('#confirm-no');
      await page.click('#close-connection');
      await confirm(page);
      expect(await target.closed).toBeUndefined();
      await page.waitForFunction(() => document.getElementById('action-log')?.textContent?.includes('Closed'));
      // Each action is in the server's log, with what it did and who asked.
      expect(actions().map((line) => [line.action, line.ok])).toEqual([
        ['send', true],
        ['send', true],
        ['remove-from-group', true],
        ['close', true],
      ]);
      expect(actions()[3]).toMatchObject({ hub: '/chathub', connectionId: id, allowReconnect: false, by: '127.0.0.1' });
      expect(actions()[1]).toMatchObject({ kind: 'group', target: 'vip', method: 'ReceiveMessage' });
    } finally {
      await target.connection.stop();
      await page.context().close();
    }
  });

  test('the page reaches its hub over WebSockets, the browser sending its Basic credentials there too', async () => {
    const page = await openAdmin(server);
    await page.context().close();
    await eventually(
      () => logLines.some((line) => line.event === 'signalr.connection.ended' && line.hub === '/signalr-admin/hub'),
      'an admin connection ended',
    );
    const transports = new Set(
      logLines
        .filter((line) => line.event === 'signalr.connection.ended' && line.hub === '/signalr-admin/hub')
        .map((line) => line.transport),
    );
    expect([...transports]).toEqual(['WebSockets']);
  });

  test('close with reconnect allowed lets an automatically reconnecting client come back', async () => {
    const page = await openAdmin(server);
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(server.hubUrl)
      .withAutomaticReconnect([0])
      .configureLogging(signalR.LogLevel.None)
      .build();
    try {
      await connection.start();
      const first = connection.connectionId!;
      const reconnected = new Promise<string | undefined>((resolve) => connection.onreconnected(resolve));
      await view(page, 'connections');
      await page.click(`#connections tr[data-connection-id="${first}"]`);
      await page.check('#close-allow-reconnect');
      await page.click('#close-connection');
      await confirm(page);
      const second = await reconnected;
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
    } finally {
      await connection.stop();
      await page.context().close();
    }
  });
});

test('without an authorize function there is no page; a denied authenticated user gets 403', async () => {
  // The chat sample without SIGNALR_ADMIN_PASSWORD; a short password is refused.
  expect(loadConfig(chatConfigOptions, { env: {} }).adminPassword).toBeUndefined();
  expect(() => loadConfig(chatConfigOptions, { env: { SIGNALR_ADMIN_PASSWORD: 'short' } })).toThrow(
    /SIGNALR_ADMIN_PASSWORD/,
  );
  const plain = await buildChatApp({ fastify: { logger: false } });
  const plainServer = await listen(plain);
  try {
    expect((await fetch(`${plainServer.url}/signalr-admin/`)).status).toBe(404);
    expect(
      (await fetch(`${plainServer.url}/signalr-admin/hub/negotiate?negotiateVersion=1`, { method: 'POST' })).status,
    ).toBe(404);
  } finally {
    await plainServer.close();
  }
  class Empty extends Hub {}
  await expect(
    Fastify({ logger: false }).register(fastifySignalR, { hubs: [{ path: '/h', hub: Empty }], admin: {} as never }),
  ).rejects.toThrow(/admin\.authorize/);

  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request) => {
    (request as { user: unknown }).user = { sub: 'visitor' };
  });
  await app.register(fastifySignalR, {
    hubs: [{ path: '/h', hub: Empty }],
    admin: { path: '/ops', authorize: () => false },
  });
  const server = await listen(app, '/h');
  try {
    expect((await fetch(`${server.url}/ops/`)).status).toBe(403);
    expect((await fetch(`${server.url}/ops/hub/negotiate?negotiateVersion=1`, { method: 'POST' })).status).toBe(403);
  } finally {
    await server.close();
  }
});

test.each(['ServerSentEvents', 'LongPolling'])(
  'the page works over %s, and a trace is bounded: rate-limited, arguments cut',
  async (transport) => {
    const app = await buildChatApp({
      fastify: { logger: false },
      signalr: { admin: { ...basicAuthAdmin(PASSWORD), traceMessagesPerSecond: 5, traceArgumentCharacters: 32 } },
    });
    const server = await listen(app);
    const pool = new ClientPool(() => server.hubUrl);
    const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/signalr-admin/?transport=${transport}`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Connected', undefined, {
        timeout: 10_000,
      });
      const client = await pool.connect({ query: 'user=chatty' });
      await page.waitForFunction(() => document.getElementById('hub-connections')?.textContent === '1', undefined, {
        timeout: 10_000,
      });
      await view(page, 'trace');
      await page.selectOption('#trace-kind', 'user');
      await page.fill('#trace-target', 'chatty');
      await page.click('#trace-start');
      await page.waitForFunction(() => document.getElementById('trace-status')?.textContent?.startsWith('Tracing'));
      const long = 'x'.repeat(500);
      await Promise.all(Array.from({ length: 30 }, () => client.connection.invoke('SendMessage', 'chatty', long)));
      await page.waitForFunction(
        () => document.getElementById('trace-status')?.textContent?.includes('over the rate not shown'),
        undefined,
        { timeout: 10_000 },
      );
      const rows = await page.$$eval('#trace-log tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
      // 30 invocations in, 30 messages out and 30 completions: at most five a second pass.
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThan(30);
      expect(rows.every((row) => row.includes('(cut)'))).toBe(false);
      expect(rows.some((row) => row.includes('(cut)') && !row.includes(long))).toBe(true);
    } finally {
      await context.close();
      await pool.stopAll();
      await server.close();
    }
  },
);

describe('two servers on one Redis with presence', () => {
  let redis: RedisServer;
  const servers: RunningServer[] = [];
  const pools: ClientPool[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (let i = 0; i < 2; i++) {
      const app = await buildChatApp({
        fastify: { logger: false },
        adminPassword: PASSWORD,
        signalr: { redis: { url: redis.url, presence: { heartbeatIntervalMs: 500 } } },
      });
      const server = await listen(app);
      servers.push(server);
      pools.push(new ClientPool(() => server.hubUrl));
    }
  });
  afterAll(async () => {
    for (const pool of pools) await pool.stopAll();
    for (const server of servers) await server.close();
    await redis?.stop();
  });

  test('both servers are shown, and a group spread over them with its members of both', async () => {
    const clients: TestClient[] = [];
    for (const pool of pools) clients.push(await pool.connect(), await pool.connect());
    for (const client of clients) await client.connection.invoke('JoinRoom', 'spread');
    const page = await openAdmin(servers[0]!);
    try {
      await page.waitForFunction(() => document.querySelectorAll('#servers tbody tr').length === 2, undefined, {
        timeout: 10_000,
      });
      const rows = await page.$$eval('#servers tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
      expect(rows.filter((row) => row.includes('(this one)'))).toHaveLength(1);
      // The other server's own figures, from the summary it writes: its transports, memory and backplane.
      await page.waitForFunction(
        () =>
          Array.from(document.querySelectorAll('#servers tbody tr')).every(
            (tr) =>
              /WebSockets\/json 2/.test(tr.textContent ?? '') &&
              /MiB/.test(tr.textContent ?? '') &&
              /connected, 0 outages/.test(tr.textContent ?? ''),
          ),
        undefined,
        { timeout: 10_000 },
      );
      await screenshot(page, 'admin-servers');
      await view(page, 'groups');
      await page.fill('#group-search', 'spread');
      await page.waitForFunction(
        () => document.querySelector('#groups tr[data-group="spread"] td:nth-child(2)')?.textContent === '4',
        undefined,
        { timeout: 10_000 },
      );
      expect(await page.textContent('#groups tr[data-group="spread"] td:nth-child(3)')).toBe('2');
      // A connection of the other server, found by its id, closed through the backplane.
      const remote = clients[2]!;
      await view(page, 'connections');
      await page.fill('#connection-search', remote.connection.connectionId!);
      await page.click(`#connections tr[data-connection-id="${remote.connection.connectionId}"]`);
      await page.waitForFunction(() =>
        document.getElementById('details-list')?.textContent?.includes('(another server)'),
      );
      await page.click('#close-connection');
      await confirm(page);
      await remote.closed;
      await eventually(() => remote.connection.state === 'Disconnected', 'the remote client closed');
    } finally {
      await page.context().close();
    }
  });
});
