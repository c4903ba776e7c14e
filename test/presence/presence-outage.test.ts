/**
 * One server cut off from Redis for a moment (a TCP proxy between it and a real redis-server, blocked, then let
 * through again) while its clients come and go: once it is back, the other server's listings show exactly what it
 * holds — the connection that left during the outage gone, the one that arrived listed.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { ClientPool, delay } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

const HUB = 'PresenceOutage.ChatHub';
const HEARTBEAT_MS = 1000;

let redis: RedisServer | undefined;
let proxy: TcpProxy | undefined;
let cutOff: ServerProcess | undefined;
let other: ServerProcess | undefined;
const pool = new ClientPool(() => cutOff!.hubUrl);

beforeAll(async () => {
  redis = await RedisServer.start();
  proxy = await startTcpProxy(redis.port);
  const env = { CHAT_HUB_NAME: HUB, SIGNALR_PRESENCE: 'true', SIGNALR_PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS) };
  [cutOff, other] = await Promise.all([
    ServerProcess.start('P', { ...env, REDIS_URL: proxy.url.replace('http:', 'redis:') }),
    ServerProcess.start('Q', { ...env, REDIS_URL: redis.url }),
  ]);
  await Promise.all([cutOff.waitForBackplane('connected'), other.waitForBackplane('connected')]);
}, 60_000);

afterAll(async () => {
  proxy?.unblock();
  await pool.stopAll();
  await stopAll(cutOff, other);
  await proxy?.close();
  await redis?.stop();
}, 30_000);

async function room(): Promise<string[]> {
  const page = (await (await fetch(`${other!.url}/presence/groups/room?limit=100`)).json()) as {
    connections: { connectionId: string }[];
  };
  return page.connections.map((member) => member.connectionId).sort();
}

test('changes made while a server could not reach Redis are in every listing once it is back', async () => {
  const leaves = await pool.connect({ transport: HttpTransportType.WebSockets, query: 'user=leaves' });
  const stays = await pool.connect({ transport: HttpTransportType.WebSockets, query: 'user=stays' });
  await Promise.all([leaves.connection.invoke('JoinRoom', 'room'), stays.connection.invoke('JoinRoom', 'room')]);
  expect(await room()).toEqual([leaves.connection.connectionId!, stays.connection.connectionId!].sort());

  proxy!.block();
  await cutOff!.waitForBackplane('disconnected');
  await leaves.connection.stop();
  const arrives = await pool.connect({ transport: HttpTransportType.WebSockets, query: 'user=arrives' });
  await arrives.connection.invoke('JoinRoom', 'room');
  proxy!.unblock();
  await cutOff!.waitForBackplane('connected');

  const expected = [stays.connection.connectionId!, arrives.connection.connectionId!].sort();
  const deadline = Date.now() + 3 * HEARTBEAT_MS + 5000;
  let listed = await room();
  while (JSON.stringify(listed) !== JSON.stringify(expected) && Date.now() < deadline) {
    await delay(50);
    listed = await room();
  }
  expect(listed).toEqual(expected);
  const count = (await (await fetch(`${other!.url}/presence/groups/room/count`)).json()) as { count: number };
  expect(count.count).toBe(2);
  expect((await fetch(`${other!.url}/presence/connections/${leaves.connection.connectionId}`)).status).toBe(404);
}, 60_000);
