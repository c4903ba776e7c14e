/**
 * The lifetime-manager conformance table (`test/support/lifetime-conformance.ts`) in the fast tier: on the
 * in-memory manager, and on two Redis lifetime managers — the same class the Redis backplane uses, publishing the
 * same MessagePack payloads — over one in-memory broker instead of a redis-server. The real-Redis run of the same
 * table is `test/backplane/lifetime-conformance.test.ts`. Then what the in-memory bus keeps of Redis pub/sub.
 */
import { decodeRedisInvocation } from '../../protocol/redis';
import { InMemoryBroker } from '../../src/lifetime/in-memory-bus';
import { InMemoryLifetimeManager } from '../../src/lifetime/in-memory-lifetime-manager';
import { eventually } from '../support/clients';
import {
  clusterOf,
  describeLifetimeConformance,
  redisManager,
  TestConnection,
  TestLog,
  type ClusterFactory,
} from '../support/lifetime-conformance';

let hubCounter = 0;

const factories: [string, ClusterFactory][] = [
  [
    'in-memory',
    async () => {
      const manager = new InMemoryLifetimeManager();
      return clusterOf([manager, manager], () => manager.close(), false);
    },
  ],
  [
    'redis manager on the in-memory bus',
    async () => {
      const broker = new InMemoryBroker();
      const hubName = `Conformance.Hub${++hubCounter}`;
      const log = new TestLog();
      const [busA, busB] = [broker.bus({ log }), broker.bus({ log })];
      const a = redisManager(busA, hubName, log);
      const b = redisManager(busB, hubName, log);
      await Promise.all([a.started, b.started]);
      return clusterOf(
        [a, b],
        async () => {
          await Promise.all([a.close(), b.close()]);
          await Promise.all([busA.close(), busB.close()]);
        },
        true,
      );
    },
  ],
];

describeLifetimeConformance(factories);

describe('Redis manager on the in-memory bus', () => {
  test('a send carries the Redis payload: the invocation framed in every protocol, the excluded ids', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const manager = redisManager(broker.bus({ log }), 'Payload.Hub', log);
    await manager.started;
    const observer = broker.bus();
    const payloads: Buffer[] = [];
    await observer.subscribe('Payload.Hub:all', (payload) => payloads.push(payload));
    await manager.sendAllExcept('Hello', ['world'], ['conn-x']);
    await eventually(() => payloads.length === 1, 'the payload');
    const invocation = decodeRedisInvocation(payloads[0]);
    expect(invocation.excludedConnectionIds).toEqual(['conn-x']);
    expect([...invocation.messages.keys()]).toEqual(['json', 'messagepack']);
    expect(Buffer.from(invocation.messages.get('json')!).toString()).toBe(
      '{"type":1,"target":"Hello","arguments":["world"]}\u001e',
    );
    await manager.close();
  });

  test('channels: the server channels at start, a connection, its user and its group while it is there', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const manager = redisManager(broker.bus({ log }), 'Lifecycle.Hub', log);
    await manager.started;
    const me = manager.serverName;
    const serverChannels = [
      'Lifecycle.Hub:all',
      'Lifecycle.Hub:internal:groups',
      `Lifecycle.Hub:internal:ack:${me}`,
      `Lifecycle.Hub:internal:return:${me}`,
    ];
    expect(serverChannels.map((channel) => broker.subscriberCount(channel))).toEqual([1, 1, 1, 1]);
    const erin = new TestConnection('erin');
    await manager.onConnected(erin);
    await manager.addToGroup(erin.connectionId, 'room');
    const connectionChannels = [
      `Lifecycle.Hub:connection:${erin.connectionId}`,
      'Lifecycle.Hub:user:erin',
      'Lifecycle.Hub:group:room',
    ];
    expect(connectionChannels.map((channel) => broker.subscriberCount(channel))).toEqual([1, 1, 1]);
    await manager.onDisconnected(erin);
    expect(connectionChannels.map((channel) => broker.subscriberCount(channel))).toEqual([0, 0, 0]);
    await manager.close();
    expect(serverChannels.map((channel) => broker.subscriberCount(channel))).toEqual([0, 0, 0, 0]);
  });

  test('a group command for a connection no server owns fails when the ack timeout passes', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const [a, b] = [
      redisManager(broker.bus({ log }), 'Ack.Hub', log, 200),
      redisManager(broker.bus({ log }), 'Ack.Hub', log, 200),
    ];
    await Promise.all([a.started, b.started]);
    const bob = new TestConnection('bob');
    await b.onConnected(bob);
    await a.addToGroup(bob.connectionId, 'owned');
    await expect(a.addToGroup('nobody-owns-this-id', 'room')).rejects.toThrow('A task was canceled.');
    expect(log.lines.filter((line) => line.level === 'warn').map((line) => line.message)).toEqual([
      'no server acknowledged a group command: no server owns that connection, or Redis lost the message',
    ]);
    await Promise.all([a.close(), b.close()]);
  });

  test('closing the manager ends the group commands still waiting for their ack', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const manager = redisManager(broker.bus({ log }), 'Closing.Hub', log, 60_000);
    await manager.started;
    const waiting = manager.addToGroup('nobody-owns-this-id', 'room');
    await manager.close();
    await expect(waiting).rejects.toThrow('The server is shutting down.');
  });

  test('a client result for a connection no server owns fails at once: every subscriber is counted', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const manager = redisManager(broker.bus({ log }), 'Results.Hub', log);
    await manager.started;
    await expect(manager.invokeConnection('nobody', 'Ask', [])).rejects.toThrow("Connection 'nobody' does not exist.");
    await manager.close();
  });
});

describe('in-memory bus', () => {
  test('delivery is asynchronous, in publish order across channels, to the buses subscribed when it was published', async () => {
    const broker = new InMemoryBroker();
    const [publisher, early, late] = [broker.bus(), broker.bus(), broker.bus()];
    const seen: string[] = [];
    await early.subscribe('a', (payload) => seen.push(`early a ${payload.toString()}`));
    await early.subscribe('b', (payload) => seen.push(`early b ${payload.toString()}`));
    expect(await publisher.publish('a', Buffer.from('1'))).toBe(1);
    expect(await publisher.publish('b', Buffer.from('2'))).toBe(1);
    await late.subscribe('a', (payload) => seen.push(`late a ${payload.toString()}`));
    expect(await publisher.publish('a', Buffer.from('3'))).toBe(2);
    expect(await publisher.publish('nobody', Buffer.from('4'))).toBe(0);
    expect(seen).toEqual([]);
    await eventually(() => seen.length === 4, 'the deliveries');
    expect(seen).toEqual(['early a 1', 'early b 2', 'early a 3', 'late a 3']);
    expect(publisher.health()).toMatchObject({ state: 'connected', publishedMessages: 4 });
    expect(early.health()).toMatchObject({ receivedMessages: 3, subscriptions: 2 });
  });

  test('a message published by a listener arrives after those published before it', async () => {
    const broker = new InMemoryBroker();
    const [a, b] = [broker.bus(), broker.bus()];
    const seen: string[] = [];
    await b.subscribe('ping', (payload) => {
      seen.push(`ping ${payload.toString()}`);
      void b.publish('pong', payload);
    });
    await a.subscribe('pong', (payload) => seen.push(`pong ${payload.toString()}`));
    await a.publish('ping', Buffer.from('1'));
    await a.publish('ping', Buffer.from('2'));
    await eventually(() => seen.length === 4, 'the replies');
    expect(seen).toEqual(['ping 1', 'ping 2', 'pong 1', 'pong 2']);
  });

  test('each receiver gets its own copy; a publisher may reuse its buffer at once', async () => {
    const broker = new InMemoryBroker();
    const [publisher, first, second] = [broker.bus(), broker.bus(), broker.bus()];
    const got: Buffer[] = [];
    await first.subscribe('c', (payload) => {
      got.push(payload);
      payload.fill(0);
    });
    await second.subscribe('c', (payload) => got.push(payload));
    const buffer = Buffer.from('abc');
    await publisher.publish('c', buffer);
    buffer.write('xyz');
    await eventually(() => got.length === 2, 'both deliveries');
    expect(got[1].toString()).toBe('abc');
  });

  test('unsubscribed and closed buses receive nothing more; a closed bus refuses to publish', async () => {
    const broker = new InMemoryBroker();
    const [publisher, leaving, closing, witness] = [broker.bus(), broker.bus(), broker.bus(), broker.bus()];
    const seen: string[] = [];
    let witnessed = 0;
    await witness.subscribe('c', () => witnessed++);
    await leaving.subscribe('c', () => seen.push('leaving'));
    await closing.subscribe('c', () => seen.push('closing'));
    const states: string[] = [];
    closing.onStateChange((health) => states.push(health.state));
    expect(leaving.receives('c')).toBe(true);
    await publisher.publish('c', Buffer.from('in flight'));
    await leaving.unsubscribe('c');
    await closing.close();
    expect([leaving.receives('c'), closing.receives('c'), closing.publishing]).toEqual([false, false, false]);
    await publisher.publish('c', Buffer.from('after'));
    // Delivered in order: once the witness has both, the others would have had theirs.
    await eventually(() => witnessed === 2, 'the witness to get both messages');
    expect(seen).toEqual([]);
    expect(broker.subscriberCount('c')).toBe(1);
    expect(states).toEqual(['closed']);
    await expect(closing.publish('c', Buffer.from('x'))).rejects.toThrow('The backplane is closed.');
    expect(closing.health()).toMatchObject({ state: 'closed', connected: false, unpublishedMessages: 1 });
  });

  test('a listener that throws is logged and does not stop the others', async () => {
    const broker = new InMemoryBroker();
    const log = new TestLog();
    const [publisher, failing, fine] = [broker.bus(), broker.bus({ log }), broker.bus()];
    let delivered = 0;
    await failing.subscribe('c', () => {
      throw new Error('boom');
    });
    await fine.subscribe('c', () => delivered++);
    await publisher.publish('c', Buffer.from('x'));
    await eventually(() => delivered === 1, 'the other listener');
    expect(log.lines.map((line) => [line.level, line.message])).toEqual([
      ['error', 'backplane: a message handler failed'],
    ]);
  });
});
