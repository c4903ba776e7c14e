/**
 * Stateful reconnect (docs/protocol.md §2.10, .NET 8+): a client built with `withStatefulReconnect()` whose socket is
 * cut — not closed — in the middle of traffic both ways resumes on the same connection; no message is lost or
 * duplicated in either direction, and the hub sees one connection throughout.
 */
import * as signalR from '@microsoft/signalr';
import Fastify from 'fastify';
import { fastifySignalR, Hub } from '../../src';
import { delay, eventually } from '../support/clients';
import { listen, type RunningServer } from '../support/servers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

const lifecycle: string[] = [];
const recorded = new Map<string, number[]>();

class TickHub extends Hub {
  override onConnected(): void {
    lifecycle.push(`connected ${this.context.connectionId}`);
    recorded.set(this.context.connectionId, []);
  }
  override onDisconnected(): void {
    lifecycle.push(`disconnected ${this.context.connectionId}`);
  }
  /** The client reports a number; the server keeps every one it handled. */
  record(value: number): number {
    recorded.get(this.context.connectionId)!.push(value);
    return value;
  }
}

let server: RunningServer;
let proxy: TcpProxy;

beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [{ path: '/ticks', hub: TickHub, allowStatefulReconnects: true }],
    keepAliveIntervalMs: 200,
  });
  server = await listen(app, '/ticks');
  proxy = await startTcpProxy(Number(new URL(server.url).port));
});
afterAll(async () => {
  await proxy.close();
  await server.close();
});

test('negotiate grants stateful reconnect only when the client asks and the hub allows it', async () => {
  const asked = await (
    await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
  ).json();
  expect(Object.keys(asked)[0]).toBe('useStatefulReconnect');
  expect(asked.useStatefulReconnect).toBe(true);
  const notAsked = await (await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  expect(notAsked.useStatefulReconnect).toBeUndefined();
  const chat = Fastify();
  await chat.register(fastifySignalR, { hubs: [{ path: '/plain', hub: TickHub }] });
  const plain = await listen(chat, '/plain');
  try {
    const refused = await (
      await fetch(`${plain.hubUrl}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
    ).json();
    expect(refused.useStatefulReconnect).toBeUndefined();
  } finally {
    await plain.close();
  }
});

test('a cut socket resumes on the same connection; nothing is lost or duplicated either way', async () => {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${proxy.url}/ticks`, { transport: signalR.HttpTransportType.WebSockets })
    .withStatefulReconnect()
    .configureLogging(signalR.LogLevel.None)
    .build();
  const ticks: number[] = [];
  connection.on('Tick', (value: number) => {
    ticks.push(value);
  });
  let closed = false;
  connection.onclose(() => (closed = true));
  await connection.start();
  const id = connection.connectionId!;
  const context = server.app.signalr.hub('/ticks');

  // Traffic both ways: the server sends Tick n every few ms; the client sends Record(n) without waiting.
  const total = 300;
  let sent = 0;
  const serverSide = (async () => {
    for (let n = 0; n < total; n++) {
      await context.clients.client(id).send('Tick', n);
      if (n % 5 === 0) await delay(2);
    }
  })();
  const clientSide = (async () => {
    for (let n = 0; n < total; n++) {
      await connection.send('Record', n);
      sent++;
      if (n % 5 === 0) await delay(2);
    }
  })();

  // Cut the socket twice in the middle of it; each time the client opens a new one (a new proxied connection).
  await eventually(() => ticks.length > 60 && sent > 60, 'traffic is flowing');
  const before = proxy.accepted;
  expect(proxy.cut()).toBeGreaterThan(0);
  await eventually(() => ticks.length > 180, 'traffic flows again after the first cut', 10_000);
  expect(proxy.accepted).toBeGreaterThan(before);
  const again = proxy.accepted;
  expect(proxy.cut()).toBeGreaterThan(0);
  await Promise.all([serverSide, clientSide]);
  await eventually(() => proxy.accepted > again, 'the client reconnected after the second cut', 10_000);

  await eventually(
    () => ticks.length >= total && (recorded.get(id)?.length ?? 0) >= total,
    'every message arrived',
    10_000,
  );
  await delay(300);
  expect(ticks).toEqual(Array.from({ length: total }, (_, n) => n));
  expect(recorded.get(id)).toEqual(Array.from({ length: total }, (_, n) => n));
  // Still one connection: same id, no disconnect/connect in between, and it still works.
  expect(connection.connectionId).toBe(id);
  expect(closed).toBe(false);
  expect(await connection.invoke('Record', -1)).toBe(-1);
  expect(lifecycle.filter((event) => event.endsWith(id))).toEqual([`connected ${id}`]);
  await connection.stop();
  await eventually(() => lifecycle.includes(`disconnected ${id}`), 'onDisconnected after stop');
});

test('without stateful reconnect the same cut ends the connection (what the feature saves)', async () => {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${proxy.url}/ticks`, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None)
    .build();
  const closed = new Promise<Error | undefined>((resolve) => connection.onclose(resolve));
  await connection.start();
  proxy.cut();
  expect(await closed).toBeInstanceOf(Error);
});

test('a client that does not come back within the disconnect timeout is disconnected once', async () => {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [{ path: '/ticks', hub: TickHub, allowStatefulReconnects: true }],
    disconnectTimeoutMs: 300,
  });
  const short = await listen(app, '/ticks');
  const shortProxy = await startTcpProxy(Number(new URL(short.url).port));
  try {
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(`${shortProxy.url}/ticks`, { transport: signalR.HttpTransportType.WebSockets })
      .withStatefulReconnect()
      .configureLogging(signalR.LogLevel.None)
      .build();
    await connection.start();
    const id = connection.connectionId!;
    // The proxy stops forwarding: the client cannot reconnect.
    await shortProxy.close();
    await eventually(() => lifecycle.includes(`disconnected ${id}`), 'onDisconnected after the timeout', 5000);
    expect(lifecycle.filter((event) => event === `disconnected ${id}`)).toHaveLength(1);
    await connection.stop();
  } finally {
    await short.close();
  }
});
