/**
 * A hub shared with servers that do not register presence: the servers with presence say so once in their log, and
 * their listings hold their own connections only (the others' connections are not registered anywhere). Servers
 * without presence stand for ASP.NET Core servers here: both subscribe the hub's channels without writing presence.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { ClientPool, delay } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'MixedPresence.ChatHub';
const HEARTBEAT_MS = 200;
const WARNING = /servers that do not register presence share this hub/;

let redis: RedisServer | undefined;
let withPresence: ServerProcess | undefined;
let without: ServerProcess | undefined;
const poolWith = new ClientPool(() => withPresence!.hubUrl);
const poolWithout = new ClientPool(() => without!.hubUrl);

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url, CHAT_HUB_NAME: HUB, LOG_LEVEL: 'info' };
  [withPresence, without] = await Promise.all([
    ServerProcess.start('P', { ...env, SIGNALR_PRESENCE: 'true', SIGNALR_PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS) }),
    ServerProcess.start('Q', env),
  ]);
  await Promise.all([withPresence.waitForBackplane('connected'), without.waitForBackplane('connected')]);
}, 60_000);

afterAll(async () => {
  await Promise.all([poolWith.stopAll(), poolWithout.stopAll()]);
  await stopAll(withPresence, without);
  await redis?.stop();
}, 30_000);

test('a server with presence warns once of servers that do not register, and lists only registered connections', async () => {
  const mine = await poolWith.connect({ transport: HttpTransportType.WebSockets });
  const theirs = await poolWithout.connect({ transport: HttpTransportType.WebSockets });
  await Promise.all([mine.connection.invoke('JoinRoom', 'room'), theirs.connection.invoke('JoinRoom', 'room')]);

  const deadline = Date.now() + 15_000;
  while (!withPresence!.logLines().some((line) => WARNING.test(line.msg)) && Date.now() < deadline) await delay(50);
  // Several heartbeats later, still one warning.
  await delay(5 * HEARTBEAT_MS);
  const warnings = withPresence!.logLines().filter((line) => WARNING.test(line.msg));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ subscribers: 2, registeredServers: 1 });

  const response = await fetch(`${withPresence!.url}/presence/groups/room`);
  const page = (await response.json()) as { scope: string; connections: { connectionId: string }[] };
  expect(page.scope).toBe('fleet');
  expect(page.connections.map((member) => member.connectionId)).toEqual([mine.connection.connectionId]);
  // The server without presence answers for itself, and says so.
  const local = (await (await fetch(`${without!.url}/presence/groups/room`)).json()) as typeof page;
  expect(local.scope).toBe('local');
  expect(local.connections.map((member) => member.connectionId)).toEqual([theirs.connection.connectionId]);
}, 60_000);
