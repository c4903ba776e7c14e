/**
 * 2.x clients across two servers on one real redis-server: a signalr-no-jquery client on server A and a Core
 * client on server B share a group both ways, a broadcast from B reaches A's 2.x client, and B adds A's 2.x
 * connection to a group through Redis's group commands; and an ASP.NET Core server on the same Redis reaches a 2.x
 * client of ours, to all and to a group.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the 2.x client is untyped */
import { HubConnectionBuilder, HttpTransportType, type HubConnection } from '@microsoft/signalr';
import { describeWithDotnet, startBackplaneReferenceServer } from '../support/dotnet-reference';
import { RedisServer } from '../support/redis-server';
import type { RunningServer } from '../support/servers';
import { ChatHub, startLegacyServer } from './fixtures';
import { loadNodeClient } from './node-window';

let redis: RedisServer;
let serverA: RunningServer;
let serverB: RunningServer;
let hubConnection: (url: string, options?: object) => any;

beforeAll(async () => {
  redis = await RedisServer.start();
  serverA = await startLegacyServer({ redis: { url: redis.url } });
  serverB = await startLegacyServer({ redis: { url: redis.url } });
  hubConnection = loadNodeClient(serverA.url);
});
afterAll(async () => {
  await serverA?.close();
  await serverB?.close();
  await redis?.stop();
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function settle(deferred: any): Promise<{ value?: unknown; error?: string }> {
  return new Promise((resolve) =>
    deferred.done((value: unknown) => resolve({ value })).fail((error: Error) => resolve({ error: error.message })),
  );
}

test.each(['webSockets', 'longPolling'])(
  'over %s a 2.x client on A and a Core client on B share groups and broadcasts',
  async (transport) => {
    const legacy = hubConnection(`${serverA.url}/signalr`, { useDefaultPath: false });
    const chat = legacy.createHubProxy('chatHub');
    const legacyReceived: string[] = [];
    chat.on('groupMessage', (group: string, message: string) => legacyReceived.push(`${group}: ${message}`));
    chat.on('addMessage', (name: string, message: string) => legacyReceived.push(`${name}: ${message}`));
    expect((await settle(legacy.start({ transport }))).error).toBeUndefined();
    const core: HubConnection = new HubConnectionBuilder()
      .withUrl(`${serverB.url}/chathub`, { transport: HttpTransportType.WebSockets })
      .build();
    const coreReceived: string[] = [];
    core.on('groupMessage', (group: string, message: string) => coreReceived.push(`${group}: ${message}`));
    await core.start();
    try {
      const room = `cluster-${transport}`;
      await core.invoke('joinGroup', room);
      await settle(chat.invoke('joinGroup', room));
      await settle(chat.invoke('sendToGroup', room, 'from 2.x on A'));
      await core.invoke('sendToGroup', room, 'from Core on B');
      await waitFor(
        () => legacyReceived.length >= 2 && coreReceived.length >= 2,
        'both group messages on both servers',
      );
      expect(legacyReceived).toEqual([`${room}: from 2.x on A`, `${room}: from Core on B`]);
      expect(coreReceived).toEqual([`${room}: from 2.x on A`, `${room}: from Core on B`]);

      // A broadcast on B reaches the 2.x client on A.
      await core.invoke('send', 'core', 'to everyone');
      await waitFor(() => legacyReceived.includes('core: to everyone'), 'the broadcast');

      // B puts A's 2.x connection in a group: a group command over Redis, acknowledged by A.
      await core.invoke('addToGroup', legacy.id, `${room}-added`);
      await core.invoke('sendToGroup', `${room}-added`, 'added from B');
      await waitFor(
        () => legacyReceived.includes(`${room}-added: added from B`),
        'the message to the group B added it to',
      );
    } finally {
      await core.stop();
      legacy.stop();
    }
  },
);

describeWithDotnet('with an ASP.NET Core server on the same Redis', () => {
  test('its sends to all and to a group reach a 2.x client of ours', async () => {
    // Ours under the .NET hub's full type name, so both servers use the same channels; 2.x clients still call it ChatHub.
    const ours = await startLegacyServer({
      redis: { url: redis.url },
      hubs: [{ path: '/chathub', hub: ChatHub, name: 'WebAPI.ChatHub' }],
    });
    const dotnet = await startBackplaneReferenceServer({ redisPort: redis.port });
    const legacy = hubConnection(`${ours.url}/signalr`, { useDefaultPath: false });
    const chat = legacy.createHubProxy('chatHub');
    const received: string[] = [];
    chat.on('ReceiveMessage', (user: string, message: string) => received.push(`${user}: ${message}`));
    const core: HubConnection = new HubConnectionBuilder()
      .withUrl(dotnet.hubUrl, { transport: HttpTransportType.WebSockets })
      .build();
    try {
      expect((await settle(legacy.start({ transport: 'webSockets' }))).error).toBeUndefined();
      await settle(chat.invoke('joinGroup', 'mixed-room'));
      await core.start();
      await core.invoke('SendMessage', 'dotnet', 'to all');
      await core.invoke('SendToRoom', 'mixed-room', 'dotnet', 'to the room');
      await waitFor(() => received.length >= 2, "the .NET server's messages");
      expect(received).toEqual(['dotnet: to all', 'dotnet: to the room']);
    } finally {
      await core.stop();
      legacy.stop();
      await dotnet.stop();
      await ours.close();
    }
  }, 120_000);
});
