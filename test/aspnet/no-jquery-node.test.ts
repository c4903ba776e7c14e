/**
 * `signalr-no-jquery` 0.2.1 (the 2.4.3 client without jQuery) in Node, against the `ChatHub` that serves Core
 * clients, over each transport it has: results, errors, hub state, groups shared with a Core client, server calls,
 * and a reconnect after a dropped connection that loses nothing.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the 2.x client is untyped */
import { HubConnectionBuilder, HttpTransportType, type HubConnection } from '@microsoft/signalr';
import type { RunningServer } from '../support/servers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { startLegacyServer } from './fixtures';
import { loadNodeClient } from './node-window';

let server: RunningServer;
let proxy: TcpProxy;
let hubConnection: (url: string, options?: object) => any;

beforeAll(async () => {
  server = await startLegacyServer();
  proxy = await startTcpProxy(Number(new URL(server.url).port));
  hubConnection = loadNodeClient(proxy.url);
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A jQuery-style deferred as a promise that settles with the value or the error's message. */
function settle(deferred: any): Promise<{ value?: unknown; error?: string }> {
  return new Promise((resolve) =>
    deferred.done((value: unknown) => resolve({ value })).fail((error: Error) => resolve({ error: error.message })),
  );
}

interface LegacyClient {
  connection: any;
  chat: any;
  received: unknown[][];
  reconnects: number;
}

async function connect(transport: string): Promise<LegacyClient> {
  const connection = hubConnection(`${proxy.url}/signalr`, { useDefaultPath: false });
  if (process.env.LEGACY_CLIENT_LOG) connection.logging = true;
  const chat = connection.createHubProxy('chatHub');
  const client: LegacyClient = { connection, chat, received: [], reconnects: 0 };
  for (const method of ['addMessage', 'groupMessage', 'numbered'])
    chat.on(method, (...args: unknown[]) => client.received.push([method, ...args]));
  connection.reconnected(() => client.reconnects++);
  const started = await settle(connection.start({ transport }));
  expect(started.error).toBeUndefined();
  expect(connection.transport.name).toBe(transport);
  return client;
}

async function coreClient(): Promise<HubConnection> {
  const connection = new HubConnectionBuilder()
    .withUrl(`${server.url}/chathub`, { transport: HttpTransportType.WebSockets })
    .build();
  await connection.start();
  return connection;
}

describe.each(['longPolling', 'serverSentEvents', 'webSockets'])('signalr-no-jquery over %s', (transport) => {
  test('results, errors, hub state and server calls', async () => {
    const client = await connect(transport);
    try {
      expect(await settle(client.chat.invoke('add', 20, 22))).toEqual({ value: 42 });
      expect(await settle(client.chat.invoke('refuse', 'no'))).toEqual({ error: 'no' });
      expect(await settle(client.chat.invoke('crash'))).toEqual({
        error: "There was an error invoking Hub method 'chathub.crash'.",
      });
      expect(await settle(client.chat.invoke('nosuchmethod'))).toEqual({
        error: "There was an error invoking Hub method 'chathub.nosuchmethod'.",
      });
      client.chat.state.userName = 'Node';
      expect(await settle(client.chat.invoke('greet'))).toEqual({ value: 'hello Node' });
      expect(client.chat.state.calls).toBe(1);
      await settle(client.chat.invoke('send', 'node', 'hi'));
      await waitFor(() => client.received.some(([method]) => method === 'addMessage'), 'addMessage');
      expect(client.received).toContainEqual(['addMessage', 'node', 'hi']);
    } finally {
      client.connection.stop();
    }
  });

  test('a 2.x client and a Core client in one group', async () => {
    const client = await connect(transport);
    const core = await coreClient();
    const coreReceived: string[] = [];
    core.on('groupMessage', (group: string, message: string) => coreReceived.push(`${group}: ${message}`));
    try {
      await core.invoke('joinGroup', 'nodes');
      expect((await settle(client.chat.invoke('joinGroup', 'nodes'))).value).toBe(client.connection.id);
      await settle(client.chat.invoke('sendToGroup', 'nodes', 'from 2.x'));
      await core.invoke('sendToGroup', 'nodes', 'from Core');
      await waitFor(
        () => client.received.filter(([method]) => method === 'groupMessage').length >= 2 && coreReceived.length >= 2,
        'group messages',
      );
      expect(client.received.filter(([method]) => method === 'groupMessage')).toEqual([
        ['groupMessage', 'nodes', 'from 2.x'],
        ['groupMessage', 'nodes', 'from Core'],
      ]);
      expect(coreReceived).toEqual(['nodes: from 2.x', 'nodes: from Core']);
      await settle(client.chat.invoke('leaveGroup', 'nodes'));
      await core.invoke('sendToGroup', 'nodes', 'after leaving');
      await settle(client.chat.invoke('send', 'marker', 'after leaving'));
      await waitFor(
        () => client.received.some(([method, name]) => method === 'addMessage' && name === 'marker'),
        'marker',
      );
      expect(client.received.filter(([method]) => method === 'groupMessage')).toHaveLength(2);
    } finally {
      await core.stop();
      client.connection.stop();
    }
  });

  test('a dropped connection reconnects, still in its groups, and receives what was sent meanwhile', async () => {
    const client = await connect(transport);
    const hub = server.app.signalr.hub('/chathub');
    try {
      await settle(client.chat.invoke('joinGroup', 'kept'));
      await hub.clients.all.send('numbered', 1);
      await waitFor(() => client.received.some(([, n]) => n === 1), 'first message');
      proxy.block();
      for (let i = 2; i <= 5; i++) await hub.clients.all.send('numbered', i);
      await hub.clients.group('kept').send('groupMessage', 'kept', 'while away');
      await new Promise((resolve) => setTimeout(resolve, 300));
      proxy.unblock();
      // Over Server-Sent Events the eventsource package opens the stream again by itself (after 1 s, before the
      // client's 2 s reconnect delay), so the client sees no reconnect: the server's second connect catches it up.
      if (transport !== 'serverSentEvents') await waitFor(() => client.reconnects > 0, 'reconnect', 20_000);
      else await waitFor(() => client.received.some(([, n]) => n === 5), 'the messages sent while away', 20_000);
      await hub.clients.group('kept').send('groupMessage', 'kept', 'after');
      await waitFor(() => client.received.some(([, , message]) => message === 'after'), 'message after reconnect');
      expect(client.received.filter(([method]) => method === 'numbered').map(([, n]) => n)).toEqual([1, 2, 3, 4, 5]);
      expect(client.received.filter(([method]) => method === 'groupMessage').map(([, , message]) => message)).toEqual([
        'while away',
        'after',
      ]);
    } finally {
      client.connection.stop();
    }
  });
});

test('over webSockets, progress reports arrive in order before the answer', async () => {
  const client = await connect('webSockets');
  try {
    const progress: unknown[] = [];
    const outcome = await new Promise<unknown>((resolve, reject) =>
      client.chat
        .invoke('countTo', 3)
        .progress((value: unknown) => progress.push(value))
        .done(resolve)
        .fail(reject),
    );
    expect(outcome).toBe('counted to 3');
    expect(progress).toEqual([1, 2, 3]);
  } finally {
    client.connection.stop();
  }
});
