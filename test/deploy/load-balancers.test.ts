/**
 * Scale-out behind real load balancers, as users deploy it: two chat server processes on one redis-server, with
 * HAProxy (samples/scale-out/haproxy.cfg) and nginx (samples/scale-out/nginx.conf.template) in front, both running
 * the sample files unchanged. Real official Node clients (each keeps its cookies) and headless Chromium pages
 * connect through the balancers over every transport:
 * - new clients land on both servers, as the servers' own logs and metrics report;
 * - messages reach the clients of the other server (through Redis);
 * - SIGTERM to one server: its clients reconnect by themselves, through the balancer, to the survivor, and chat on;
 *   calls in flight finish first, their requests still reaching the draining server through the balancers; the
 *   stopped server exits 0 and leaves Redis.
 * The steps build on each other, so the tests run in order on shared processes.
 */
import * as path from 'node:path';
import * as signalR from '@microsoft/signalr';
import Redis from 'ioredis';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser';
import { eventually } from '../support/clients';
import { LoadBalancer } from '../support/load-balancers';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

jest.setTimeout(60_000);

const SAMPLE = path.resolve(__dirname, '../../samples/scale-out');
const TRANSPORTS = ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const;
type Transport = (typeof TRANSPORTS)[number];
/** Most clients started to see both servers get one (balancers without a turn-taking guarantee would need more). */
const MAX_CLIENTS_PER_TRANSPORT = 8;

let redis: RedisServer | undefined;
let serverA: ServerProcess | undefined;
let serverB: ServerProcess | undefined;
let haproxy: LoadBalancer | undefined;
let nginx: LoadBalancer | undefined;
let browser: Browser | undefined;

/** A Node client connected through a balancer, with what it saw. */
interface Client {
  readonly label: string;
  readonly transport: Transport;
  readonly connection: signalR.HubConnection;
  readonly received: string[];
  /** The connection ids it had, in order (a new one after each reconnection). */
  readonly ids: string[];
  reconnectingAt?: number;
  reconnectedAt?: number;
  /** Reconnection attempts that failed (the client logs each), with their errors. */
  readonly failedAttempts: string[];
  closed: boolean;
}

/** A chat page in Chromium, connected through a balancer. */
interface PageClient {
  readonly label: string;
  readonly transport: Transport;
  readonly context: BrowserContext;
  readonly page: Page;
  readonly ids: string[];
}

const clients: Client[] = [];
const pages: PageClient[] = [];

function servers(): [ServerProcess, ServerProcess] {
  return [serverA!, serverB!];
}

/** Which server reported the connection `id` started (its `signalr.connection.started` log event). */
function serverOf(id: string): ServerProcess | undefined {
  return servers().find((server) =>
    server.logLines().some((line) => line.event === 'signalr.connection.started' && line.connectionId === id),
  );
}

async function waitForServerOf(id: string): Promise<ServerProcess> {
  await eventually(() => serverOf(id) !== undefined, `a server to report connection ${id}`);
  return serverOf(id)!;
}

async function connect(balancer: LoadBalancer, transport: Transport, label: string): Promise<Client> {
  const client: Client = {
    label,
    transport,
    connection: undefined!,
    received: [],
    ids: [],
    failedAttempts: [],
    closed: false,
  };
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${balancer.url}/chathub`, { transport: signalR.HttpTransportType[transport] })
    // The official client's default delays: at once, then 2, 10 and 30 s.
    .withAutomaticReconnect()
    .configureLogging({
      log: (_level, message) => {
        if (message.startsWith('Reconnect attempt failed')) client.failedAttempts.push(message);
      },
    })
    .build();
  (client as { connection: signalR.HubConnection }).connection = connection;
  connection.on('ReceiveMessage', (_user: string, message: string) => client.received.push(message));
  connection.onreconnecting(() => {
    client.reconnectingAt = Date.now();
  });
  connection.onreconnected((id) => {
    client.reconnectedAt = Date.now();
    if (id !== undefined) client.ids.push(id);
  });
  connection.onclose(() => {
    client.closed = true;
  });
  clients.push(client);
  await connection.start();
  client.ids.push(connection.connectionId!);
  return client;
}

/**
 * Connects clients of `transport` through `balancer` until both servers have one; returns one client per server
 * (the extra ones are stopped). Each new client carries no cookie, so the balancer picks a server for it.
 */
async function clientOnEachServer(balancer: LoadBalancer, transport: Transport): Promise<Map<ServerProcess, Client>> {
  const placed = new Map<ServerProcess, Client>();
  for (let i = 0; i < MAX_CLIENTS_PER_TRANSPORT && placed.size < 2; i++) {
    const client = await connect(balancer, transport, `${balancer.label}-${transport}-${i}`);
    const server = await waitForServerOf(client.ids[0]);
    if (placed.has(server)) {
      clients.splice(clients.indexOf(client), 1);
      await client.connection.stop();
    } else {
      placed.set(server, client);
    }
  }
  return placed;
}

/** `sender` says `text` to everyone; resolves once every client in `audience` got it. */
async function say(sender: Client, text: string, audience: readonly Client[]): Promise<void> {
  await sender.connection.invoke('SendMessage', sender.label, text);
  await eventually(
    () => audience.every((client) => client.received.includes(text)),
    `"${text}" to reach ${audience
      .filter((client) => !client.received.includes(text))
      .map((c) => c.label)
      .join(', ')}`,
    10_000,
  );
}

async function pageText(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = {
    REDIS_URL: redis.url,
    LOG_LEVEL: 'info',
    METRICS_ENABLED: 'true',
    // Long enough for HAProxy's health check to take the draining server out while a call is still running.
    SHUTDOWN_DRAIN_TIMEOUT_MS: '10000',
  };
  [serverA, serverB] = await Promise.all([ServerProcess.start('A', env), ServerProcess.start('B', env)]);
  await Promise.all([serverA.waitForBackplane('connected'), serverB.waitForBackplane('connected')]);
  const backends = [`127.0.0.1:${serverA.port}`, `127.0.0.1:${serverB.port}`] as const;
  // Each is kept as soon as it runs, so afterAll stops it even when another fails to start.
  await Promise.all([
    LoadBalancer.haproxy(path.join(SAMPLE, 'haproxy.cfg'), backends).then((started) => (haproxy = started)),
    LoadBalancer.nginx(path.join(SAMPLE, 'nginx.conf.template'), backends).then((started) => (nginx = started)),
    launchBrowser().then((started) => (browser = started)),
  ]);
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.connection.stop().catch(() => undefined)));
  await Promise.all(pages.map((page) => page.context.close().catch(() => undefined)));
  await browser?.close();
  await haproxy?.stop();
  await nginx?.stop();
  await stopAll(serverA, serverB);
  await redis?.stop();
});

describe.each([
  ['HAProxy', () => haproxy!],
  ['nginx', () => nginx!],
])('through %s', (_name, balancer) => {
  test.each(TRANSPORTS)('Node clients over %s land on both servers and hear each other', async (transport) => {
    const placed = await clientOnEachServer(balancer(), transport);
    expect(placed.size).toBe(2);
    const onA = placed.get(serverA!)!;
    const onB = placed.get(serverB!)!;
    // Every later request of a client went to its server: it is connected, and sending works both ways.
    await say(onA, `${transport} from A via ${balancer().label}`, [onA, onB]);
    await say(onB, `${transport} from B via ${balancer().label}`, [onA, onB]);
  });
});

test.each(TRANSPORTS)('chat pages in Chromium over %s land on both servers and hear each other', async (transport) => {
  const placed = new Map<ServerProcess, PageClient>();
  for (let i = 0; i < MAX_CLIENTS_PER_TRANSPORT && placed.size < 2; i++) {
    // A fresh context has no cookie: the balancer picks the server when the page loads; the hub requests follow it.
    const context = await browser!.newContext();
    const page = await context.newPage();
    await page.goto(`${haproxy!.url}/?transport=${transport}`);
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Connected ('));
    const id = /Connected \((.+)\)/.exec(await pageText(page, '#status'))![1];
    const server = await waitForServerOf(id);
    const client: PageClient = { label: `page-${transport}-${i}`, transport, context, page, ids: [id] };
    if (placed.has(server)) await context.close();
    else {
      placed.set(server, client);
      pages.push(client);
    }
  }
  expect(placed.size).toBe(2);
  const [onA, onB] = [placed.get(serverA!)!, placed.get(serverB!)!];
  // Typed into the page on A, shown on the page on B, and the other way round.
  for (const [from, to] of [
    [onA, onB],
    [onB, onA],
  ]) {
    const text = `typed in ${from.label}`;
    await from.page.fill('#user', from.label);
    await from.page.fill('#message', text);
    await from.page.click('#send');
    await to.page.waitForFunction(
      (expected) => document.getElementById('messages')?.textContent?.includes(expected),
      `${from.label}: ${text}`,
    );
  }
});

test('each server counts the connections it holds, by transport, in its own metrics', async () => {
  for (const server of servers()) {
    const metrics = await server.metrics();
    for (const transport of TRANSPORTS) {
      const expected =
        clients.filter((client) => client.transport === transport && serverOf(client.ids.at(-1)!) === server).length +
        pages.filter((page) => page.transport === transport && serverOf(page.ids[0]) === server).length;
      const otel = { WebSockets: 'web_sockets', ServerSentEvents: 'server_sent_events', LongPolling: 'long_polling' }[
        transport
      ];
      expect({
        server: server.label,
        transport,
        count: metrics.sum('signalr_server_active_connections', { signalr_transport: otel }),
      }).toEqual({ server: server.label, transport, count: expected });
    }
  }
});

test('SIGTERM to one server: its clients move through the balancers to the other, in-flight calls finish first', async () => {
  const redisClient = new Redis(redis!.url, { lazyConnect: true });
  try {
    await redisClient.connect();
    const ourConnections = async () =>
      ((await redisClient.client('LIST')) as string).split('\n').filter((line) => line.includes('(fastify-signalr)'))
        .length;
    // Two Redis connections per server (publish, subscribe).
    expect(await ourConnections()).toBe(4);

    const victim = serverA!;
    const survivor = serverB!;
    const movers = clients.filter((client) => serverOf(client.ids.at(-1)!) === victim);
    const stayers = clients.filter((client) => serverOf(client.ids.at(-1)!) === survivor);
    const movingPages = pages.filter((page) => serverOf(page.ids[0]) === victim);
    expect(movers.length).toBeGreaterThanOrEqual(6);
    expect(stayers.length).toBeGreaterThanOrEqual(6);
    expect(movingPages).toHaveLength(3);

    // A long-polling client of the victim behind each balancer is in the middle of a call when the signal comes:
    // the server asked it a question (AskClient) and waits for its answer, which the test holds back.
    const busy = movers.filter((client) => client.transport === 'LongPolling');
    expect(busy.map((client) => client.label.split('-')[0]).sort()).toEqual(['haproxy', 'nginx']);
    const idle = movers.filter((client) => !busy.includes(client));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const asked = new Set<Client>();
    for (const client of busy) {
      client.connection.on('GetAnswer', async () => {
        asked.add(client);
        await released;
        return `answer of ${client.label}`;
      });
    }
    const calls = busy.map((client) => client.connection.invoke<string>('AskClient', client.ids.at(-1)));
    await eventually(() => asked.size === busy.length, 'the server to ask the busy clients');

    const killedAt = Date.now();
    victim.signal('SIGTERM');
    await eventually(
      () => idle.every((client) => client.reconnectedAt !== undefined),
      'every idle client of A to reconnect',
      20_000,
    );
    const failoverMs = Math.max(...idle.map((client) => client.reconnectedAt! - killedAt));
    for (const page of movingPages) {
      await page.page.waitForFunction(
        (oldId) => {
          const status = document.getElementById('status')?.textContent ?? '';
          return status.startsWith('Connected (') && !status.includes(oldId);
        },
        page.ids[0],
        { timeout: 20_000 },
      );
      page.ids.push(/Connected \((.+)\)/.exec(await pageText(page.page, '#status'))![1]);
    }
    const pagesFailoverMs = Date.now() - killedAt;

    // The busy clients stay while their calls run — even once HAProxy's health check took the draining server out
    // and nginx saw its 503s: their answers still reach it, and the results come back.
    expect(busy.filter((client) => client.reconnectingAt !== undefined)).toEqual([]);
    await eventually(
      () => /chat_servers\/chat1 is DOWN/.test(haproxy!.log),
      'HAProxy to take the draining server out',
      10_000,
    );
    release();
    expect(await Promise.all(calls)).toEqual(busy.map((client) => `answer of ${client.label}`));
    await eventually(
      () => busy.every((client) => client.reconnectedAt !== undefined),
      'the busy clients to move too',
      10_000,
    );

    // The stopped server drained (nothing was cut), exited 0 and left Redis.
    expect(await victim.exited).toEqual({ code: 0, signal: null });
    const events = victim.logLines().map((line) => line.event);
    expect(events).toEqual(
      expect.arrayContaining(['signalr.shutdown.started', 'signalr.shutdown.drained', 'signalr.shutdown.completed']),
    );
    expect(victim.logLines().find((line) => line.event === 'signalr.shutdown.drained')).toMatchObject({
      cut: 0,
      cutConnections: [],
    });
    expect(await ourConnections()).toBe(2);

    // Everyone is on the survivor now, on the first reconnection attempt (the balancers passed the draining
    // server's 503 on to the survivor instead of failing); nobody gave up; the survivor's clients never noticed.
    for (const client of movers) expect(serverOf(client.ids.at(-1)!)).toBe(survivor);
    expect(movers.map((client) => [client.label, client.failedAttempts])).toEqual(
      movers.map((client) => [client.label, []]),
    );
    for (const page of movingPages) expect(serverOf(page.ids.at(-1)!)).toBe(survivor);
    expect(clients.filter((client) => client.closed)).toEqual([]);
    expect(stayers.filter((client) => client.reconnectingAt !== undefined)).toEqual([]);
    const metrics = await survivor.metrics();
    expect(metrics.sum('signalr_server_active_connections')).toBe(clients.length + pages.length);

    // And they keep chatting: moved clients reach every client and page.
    for (const sender of [movers[0], movers.at(-1)!]) await say(sender, `after failover from ${sender.label}`, clients);
    const text = `after failover from ${movers[0].label}`;
    for (const page of pages) {
      await page.page.waitForFunction(
        (expected) => document.getElementById('messages')?.textContent?.includes(expected),
        text,
      );
    }
    console.log(
      `failover: ${idle.length} idle Node clients reconnected within ${failoverMs} ms of SIGTERM, ` +
        `${movingPages.length} pages within ${pagesFailoverMs} ms; ${busy.length} busy clients after their calls finished`,
    );
  } finally {
    redisClient.disconnect();
  }
});
