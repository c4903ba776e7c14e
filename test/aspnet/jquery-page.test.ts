/**
 * The npm `signalr` 2.4.3 client (jquery.signalR) with jQuery 3 in real headless Chromium, on a page written as
 * the ASP.NET SignalR 2.x articles write it, against the same `ChatHub` that serves Core clients — over each
 * transport the client has.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the page's globals ($, the client's objects) are untyped */
import type { Browser, Page } from 'playwright-core';
import { HubConnectionBuilder, HttpTransportType, type HubConnection } from '@microsoft/signalr';
import { launchBrowser } from '../support/browser';
import { startTcpProxy } from '../support/tcp-proxy';
import type { RunningServer } from '../support/servers';
import { startLegacyServer } from './fixtures';

let browser: Browser;
let server: RunningServer;

beforeAll(async () => {
  browser = await launchBrowser();
  server = await startLegacyServer();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function openChat(transport: string, name: string, url = server.url): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/chat.html?transport=${transport}&name=${name}`);
  await page.waitForFunction(
    () => (window as any).connectedTransport !== undefined || (window as any).startError !== undefined,
    undefined,
    { timeout: 15_000 },
  );
  const state = await page.evaluate(() => ({
    transport: (window as any).connectedTransport,
    error: (window as any).startError,
  }));
  expect(state).toEqual({ transport, error: undefined });
  return page;
}

async function coreClient(): Promise<HubConnection> {
  const connection = new HubConnectionBuilder()
    .withUrl(`${server.url}/chathub`, { transport: HttpTransportType.WebSockets })
    .build();
  await connection.start();
  return connection;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const TRANSPORTS = ['longPolling', 'serverSentEvents', 'webSockets'];

describe.each(TRANSPORTS)('jquery.signalR over %s', (transport) => {
  test('a message sent from one page reaches another page and a Core client', async () => {
    const alice = await openChat(transport, 'alice');
    const bob = await openChat(transport, 'bob');
    const core = await coreClient();
    const coreMessages: string[] = [];
    core.on('addMessage', (name: string, message: string) => coreMessages.push(`${name}: ${message}`));
    try {
      await alice.fill('#message', `hello over ${transport}`);
      await alice.click('#sendmessage');
      await bob.waitForFunction(
        (text) => document.getElementById('discussion')!.textContent!.includes(text),
        `alice: hello over ${transport}`,
        { timeout: 10_000 },
      );
      // And the other way: a Core client's send reaches the 2.x page.
      await core.invoke('send', 'core', 'from the new client');
      await alice.waitForFunction(
        () => document.getElementById('discussion')!.textContent!.includes('core: from the new client'),
        undefined,
        { timeout: 10_000 },
      );
      expect(coreMessages).toContain(`alice: hello over ${transport}`);
    } finally {
      await core.stop();
      await alice.context().close();
      await bob.context().close();
    }
  });

  test('invocations answer with results, hub errors, hidden errors and hub state', async () => {
    const page = await openChat(transport, 'carol');
    try {
      const outcome = await page.evaluate(async () => {
        const chat = (window as any).$.connection.chatHub;
        const settle = (promise: any) =>
          new Promise((resolve) =>
            promise
              .done((value: unknown) => resolve({ value }))
              .fail((error: any) =>
                resolve({
                  error: error.message,
                  isHub: error.source !== undefined && error.source !== null ? 'source' : undefined,
                }),
              ),
          );
        chat.state.userName = 'Carol';
        const sum = await settle(chat.server.add(2, 40));
        const refused = await settle(chat.server.refuse('not today'));
        const crashed = await settle(chat.server.crash());
        const greeting = await settle(chat.server.greet());
        const again = await settle(chat.server.greet());
        return { sum, refused, crashed, greeting, again, calls: chat.state.calls };
      });
      expect(outcome.sum).toEqual({ value: 42 });
      expect(outcome.refused).toMatchObject({ error: 'not today' });
      expect(outcome.crashed).toMatchObject({ error: "There was an error invoking Hub method 'chathub.crash'." });
      expect(outcome.greeting).toEqual({ value: 'hello Carol' });
      expect(outcome.again).toEqual({ value: 'hello Carol' });
      expect(outcome.calls).toBe(2);
    } finally {
      await page.context().close();
    }
  });

  test('a 2.x page and a Core client in one group exchange messages', async () => {
    const page = await openChat(transport, 'dave');
    const core = await coreClient();
    const coreGroup: string[] = [];
    core.on('groupMessage', (group: string, message: string) => coreGroup.push(`${group}: ${message}`));
    try {
      await core.invoke('joinGroup', 'room');
      await page.evaluate(
        () =>
          new Promise((resolve, reject) =>
            (window as any).$.connection.chatHub.server.joinGroup('room').done(resolve).fail(reject),
          ),
      );
      await page.evaluate(
        () =>
          new Promise((resolve, reject) =>
            (window as any).$.connection.chatHub.server.sendToGroup('room', 'from 2.x').done(resolve).fail(reject),
          ),
      );
      await core.invoke('sendToGroup', 'room', 'from Core');
      await page.waitForFunction(() => document.querySelectorAll('#discussion li.group').length >= 2, undefined, {
        timeout: 10_000,
      });
      const pageGroup = await page.evaluate(() =>
        Array.from(document.querySelectorAll('#discussion li.group')).map((li) => li.textContent),
      );
      expect(pageGroup).toEqual(['room: from 2.x', 'room: from Core']);
      await waitFor(() => coreGroup.length >= 2);
      expect(coreGroup).toEqual(['room: from 2.x', 'room: from Core']);
      // The page got a groups token for its reconnects.
      expect(await page.evaluate(() => typeof (window as any).$.connection.hub.groupsToken)).toBe('string');
    } finally {
      await core.stop();
      await page.context().close();
    }
  });

  test('a dropped connection reconnects and receives every message sent meanwhile', async () => {
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    const page = await openChat(transport, 'erin', proxy.url);
    const hub = server.app.signalr.hub('/chathub');
    try {
      await hub.clients.all.send('numbered', 1);
      await page.waitForFunction(() => (window as any).numbers.includes(1), undefined, { timeout: 10_000 });
      // The network goes away: no close frame, no FIN from the page.
      proxy.block();
      for (let i = 2; i <= 6; i++) await hub.clients.all.send('numbered', i);
      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.unblock();
      await page.waitForFunction(() => (window as any).reconnects > 0, undefined, { timeout: 20_000 });
      await hub.clients.all.send('numbered', 7);
      await page.waitForFunction(() => (window as any).numbers.includes(7), undefined, { timeout: 10_000 });
      const numbers = await page.evaluate(() => (window as any).numbers as number[]);
      expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await page.context().close();
      await proxy.close();
    }
  });
});
