/**
 * The emitter's Redis connection, on a suite-started redis-server: it publishes as a least-privilege ACL user (the
 * README's ACL: pub/sub on the hub's channels only), writes the bytes a server writes, refuses bad credentials at
 * `ready()`, and while Redis is down rejects sends — then sends again once Redis is back.
 */
import Redis from 'ioredis';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { MessageType, type InvocationMessage } from '../../protocol/messages';
import { decodeRedisInvocation } from '../../protocol/redis';
import { createEmitter, type HubEmitter } from '../../src/emitter';
import { aclRules } from '../support/backplane-acl';
import { delay } from '../support/clients';
import { RedisServer } from '../support/redis-server';

const HUB = 'Notifications.Hub';
const PASSWORD = 'emitter-pw';
const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

let redis: RedisServer;
let admin: Redis;
let subscriber: Redis;
const received: { channel: string; payload: Buffer }[] = [];
const emitters: HubEmitter<object>[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  admin = new Redis(redis.url);
  await admin.call('ACL', 'SETUSER', 'emitter', 'on', `>${PASSWORD}`, ...aclRules(HUB));
  subscriber = new Redis(redis.url);
  subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) =>
    received.push({ channel: channel.toString(), payload }),
  );
  await subscriber.subscribe(`${HUB}:all`, `${HUB}:user:ann`);
});

afterAll(async () => {
  await Promise.all(emitters.map((emitter) => emitter.close()));
  subscriber?.disconnect();
  admin?.disconnect();
  await redis?.stop();
});

async function nextPayload(channel: string, since: number): Promise<Buffer> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = received.slice(since).find((message) => message.channel === channel);
    if (found !== undefined) return found.payload;
    if (Date.now() > deadline) throw new Error(`nothing on ${channel}`);
    await delay(10);
  }
}

test("as an ACL user limited to the hub's channels, it publishes the bytes a server writes, in both protocols", async () => {
  const emitter = createEmitter({
    redis: `redis://emitter:${PASSWORD}@127.0.0.1:${redis.port}`,
    hub: HUB,
    logger: quiet,
  });
  emitters.push(emitter);
  await emitter.ready();
  const since = received.length;
  await emitter.clients.user('ann').send('Notify', { order: 7 }, 'shipped');
  const invocation = decodeRedisInvocation(await nextPayload(`${HUB}:user:ann`, since));
  const message: InvocationMessage = {
    type: MessageType.Invocation,
    target: 'Notify',
    arguments: [{ order: 7 }, 'shipped'],
  };
  expect(invocation.excludedConnectionIds).toEqual([]);
  expect([...invocation.messages.keys()]).toEqual(['json', 'messagepack']);
  expect(Buffer.from(invocation.messages.get('json')!)).toEqual(jsonHubProtocol.writeMessage(message));
  expect(Buffer.from(invocation.messages.get('messagepack')!)).toEqual(messagePackHubProtocol.writeMessage(message));
});

test('credentials Redis refuses fail ready(), naming the user and never the password', async () => {
  const emitter = createEmitter({
    redis: `redis://emitter:wrong-${PASSWORD}@127.0.0.1:${redis.port}`,
    hub: HUB,
    logger: quiet,
  });
  emitters.push(emitter);
  const error = await emitter.ready().then(
    () => undefined,
    (reason: unknown) => reason as Error,
  );
  expect(error?.message).toContain("refused the credentials of user 'emitter'");
  expect(error?.message).not.toContain(PASSWORD);
  await expect(emitter.clients.all.send('Notify', 'x')).rejects.toThrow("refused the credentials of user 'emitter'");
  // It does not keep knocking with the refused credentials: its connections are closed.
  expect(emitter.health().state).toBe('closed');
});

test('while Redis is down a send rejects, so a job can be retried; once Redis is back sends go out again', async () => {
  const emitter = createEmitter({ redis: `127.0.0.1:${redis.port},abortConnect=false`, hub: HUB, logger: quiet });
  emitters.push(emitter);
  await emitter.ready();
  await redis.kill();
  await expect(emitter.clients.all.send('Notify', 'during the outage')).rejects.toThrow(
    /^The message was not sent to Redis: /,
  );
  await redis.start();
  await admin.call('ACL', 'SETUSER', 'emitter', 'on', `>${PASSWORD}`, ...aclRules(HUB)).catch(() => undefined);
  // The subscriber reconnects by itself (ioredis resubscribes); retry the send as a job queue would.
  const deadline = Date.now() + 15_000;
  for (let attempt = 0; ; attempt++) {
    const since = received.length;
    const sent = await emitter.clients.all.send('Notify', `after the outage #${attempt}`).then(
      () => true,
      () => false,
    );
    const arrived =
      sent &&
      (await nextPayload(`${HUB}:all`, since).then(
        () => true,
        () => false,
      ));
    if (arrived) break;
    if (Date.now() > deadline) throw new Error('no send went out after Redis came back');
    await delay(100);
  }
  expect(emitter.health().outages).toBe(1);
}, 30_000);
