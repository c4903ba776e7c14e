/**
 * The emitter against a live mixed cluster: two of our servers and an ASP.NET Core reference server on one
 * redis-server, official JSON and MessagePack clients on each (test/support/mixed-cluster.ts). Every send kind
 * reaches exactly the intended clients on both kinds of server; group commands are acknowledged by the server that
 * owns the connection, .NET's included; client results come back from a client on either kind of server; and the
 * failures a worker sees (an unknown connection, a closed emitter) are clear.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { ClientPool } from '../support/clients';
import { createEmitter, EmitterClosedError, GroupCommandTimeoutError, type HubEmitter } from '../../src/emitter';
import { describeWithDotnet } from '../support/dotnet-reference';
import { MIXED_CLIENT_NAMES, MIXED_HUB, MixedCluster, once, type MixedClientName } from '../support/mixed-cluster';

jest.setTimeout(60_000);

/** The chat hub's client methods, as the emitter's type parameter. */
interface ChatClient {
  ReceiveMessage(user: string | null, message: string | null): void;
  GetAnswer(question: string): string;
}

const ACK_TIMEOUT_MS = 1000;

let cluster: MixedCluster;
let emitter: HubEmitter<ChatClient>;
const emitters: HubEmitter<object>[] = [];

describeWithDotnet('the Redis emitter in a cluster of two fastify-signalr servers and an ASP.NET Core server', () => {
  beforeAll(async () => {
    cluster = await MixedCluster.start();
    emitter = createEmitter<ChatClient>({ redis: cluster.redis.url, hub: MIXED_HUB, ackTimeoutMs: ACK_TIMEOUT_MS });
    emitters.push(emitter);
    await emitter.ready();
  }, 180_000);

  afterAll(async () => {
    await Promise.all(emitters.map((each) => each.close()));
    await cluster?.stop();
  }, 60_000);

  const all = MIXED_CLIENT_NAMES;
  const without = (...names: MixedClientName[]) => all.filter((name) => !names.includes(name));

  const cases: [string, (text: string) => Promise<void>, () => readonly MixedClientName[]][] = [
    ['all', (text) => emitter.clients.all.send('ReceiveMessage', 'emitter', text), () => all],
    [
      'allExcept',
      (text) =>
        emitter.clients
          .allExcept([cluster.idOf('aPack'), cluster.idOf('dotnetJson')])
          .send('ReceiveMessage', 'emitter', text),
      () => without('aPack', 'dotnetJson'),
    ],
    [
      'client on ours',
      (text) => emitter.clients.client(cluster.idOf('bPack')).send('ReceiveMessage', 'emitter', text),
      () => ['bPack'],
    ],
    [
      'client on .NET',
      (text) => emitter.clients.client(cluster.idOf('dotnetPack')).send('ReceiveMessage', 'emitter', text),
      () => ['dotnetPack'],
    ],
    [
      'clients',
      (text) =>
        emitter.clients
          .clients([cluster.idOf('aJson'), cluster.idOf('dotnetJson')])
          .send('ReceiveMessage', 'emitter', text),
      () => ['aJson', 'dotnetJson'],
    ],
    [
      'group',
      (text) => emitter.clients.group('room-a').send('ReceiveMessage', 'emitter', text),
      () => ['aJson', 'bPack', 'dotnetJson'],
    ],
    [
      'groups',
      (text) => emitter.clients.groups(['room-a', 'room-b']).send('ReceiveMessage', 'emitter', text),
      () => ['aJson', 'bPack', 'dotnetJson', 'dotnetPack'],
    ],
    [
      'groupExcept',
      (text) =>
        emitter.clients.groupExcept('room-a', [cluster.idOf('dotnetJson')]).send('ReceiveMessage', 'emitter', text),
      () => ['aJson', 'bPack'],
    ],
    [
      'user',
      (text) => emitter.clients.user('carol').send('ReceiveMessage', 'emitter', text),
      () => ['bJson', 'dotnetPack'],
    ],
    [
      'users',
      (text) => emitter.clients.users(['alice', 'erin']).send('ReceiveMessage', 'emitter', text),
      () => ['aJson', 'dotnetJson'],
    ],
  ];

  test.each(cases)(
    '%s reaches exactly its clients, JSON and MessagePack, on both kinds of server',
    async (kind, send, expected) => {
      const text = `emitter ${kind}`;
      await send(text);
      expect(await cluster.deliveredAfterSettling(text, expected())).toEqual(once(expected()));
      // What the client sees is the hub's own message: the sender's arguments, unchanged, in either protocol.
      for (const name of expected())
        expect(cluster.clients[name].inbox('ReceiveMessage').items).toContainEqual(['emitter', text]);
    },
  );

  test('addToGroup of a connection on the .NET server is acknowledged, and the next group send reaches it; removeFromGroup too', async () => {
    const id = cluster.idOf('dotnetPack');
    await emitter.groups.addToGroup(id, 'emitter-room');
    await emitter.clients.group('emitter-room').send('ReceiveMessage', 'emitter', 'after add on .NET');
    expect(await cluster.deliveredAfterSettling('after add on .NET', ['dotnetPack'])).toEqual({ dotnetPack: 1 });

    await emitter.groups.removeFromGroup(id, 'emitter-room');
    await emitter.clients.group('emitter-room').send('ReceiveMessage', 'emitter', 'after remove on .NET');
    expect(await cluster.deliveredAfterSettling('after remove on .NET', [])).toEqual({});
  });

  test('addToGroup of a connection on one of ours is acknowledged, and the next group send reaches it', async () => {
    await emitter.groups.addToGroup(cluster.idOf('bJson'), 'emitter-room-2');
    await emitter.clients.group('emitter-room-2').send('ReceiveMessage', 'emitter', 'after add on ours');
    expect(await cluster.deliveredAfterSettling('after add on ours', ['bJson'])).toEqual({ bJson: 1 });
  });

  test('addToGroup of a connection no server owns rejects after ackTimeoutMs with a clear error', async () => {
    const started = Date.now();
    const error = await emitter.groups.addToGroup('no-such-connection', 'room-a').then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );
    expect(error).toBeInstanceOf(GroupCommandTimeoutError);
    expect(error?.message).toBe(
      `No server acknowledged the request to add connection 'no-such-connection' to group 'room-a' within ${ACK_TIMEOUT_MS} ms: ` +
        'no server on this Redis owns that connection (or Redis lost the message).',
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);
  });

  test.each(['aJson', 'bPack', 'dotnetJson', 'dotnetPack'] as const)('invoke gets the answer of %s', async (name) => {
    const answer: string = await emitter.clients.client(cluster.idOf(name)).invoke('GetAnswer', 'ping');
    expect(answer).toBe(`${name} answers ping`);
  });

  test('invoke of a connection no server owns rejects at once, as a server does', async () => {
    await expect(emitter.clients.client('no-such-connection').invoke('GetAnswer', 'ping')).rejects.toThrow(
      "Connection 'no-such-connection' does not exist.",
    );
  });

  test("client results in flight are bounded by maximumPendingResults, and an aborted one rejects as a server's does", async () => {
    const pool = new ClientPool(() => cluster.hubUrlOf('bJson'));
    try {
      const silent = await pool.connect({
        transport: HttpTransportType.WebSockets,
        handlers: { GetAnswer: () => new Promise(() => undefined) },
      });
      await silent.connection.invoke('WhoAmI');
      const bounded = createEmitter<ChatClient>({ redis: cluster.redis.url, hub: MIXED_HUB, maximumPendingResults: 1 });
      emitters.push(bounded);
      const abort = new AbortController();
      const waiting = bounded.clients
        .client(silent.connection.connectionId!)
        .invoke('GetAnswer', 'never', abort.signal);
      waiting.catch(() => undefined);
      await expect(bounded.clients.client(cluster.idOf('aJson')).invoke('GetAnswer', 'one more')).rejects.toThrow(
        '1 client results are already awaited (maximumPendingResults).',
      );
      abort.abort();
      await expect(waiting).rejects.toThrow('Invocation canceled by the server.');
      expect(await bounded.clients.client(cluster.idOf('aJson')).invoke('GetAnswer', 'again')).toBe(
        'aJson answers again',
      );
    } finally {
      await pool.stopAll();
    }
  });

  test('the typed emitter refuses client methods and arguments the interface does not declare', () => {
    const check = (): void => {
      // @ts-expect-error a client method ChatClient does not name
      void emitter.clients.all.send('ReceiveMesage', 'a', 'b');
      // @ts-expect-error a wrong argument type
      void emitter.clients.all.send('ReceiveMessage', 'a', 42);
    };
    expect(typeof check).toBe('function');
  });

  test('a closed emitter rejects sends, group changes and invocations', async () => {
    const closing = createEmitter({ redis: cluster.redis.url, hub: MIXED_HUB });
    emitters.push(closing);
    await closing.ready();
    await closing.clients.all.send('ReceiveMessage', 'emitter', 'before close');
    expect(await cluster.deliveredAfterSettling('before close', all)).toEqual(once(all));
    await closing.close();
    await expect(closing.clients.all.send('ReceiveMessage', 'emitter', 'after close')).rejects.toBeInstanceOf(
      EmitterClosedError,
    );
    await expect(closing.groups.addToGroup(cluster.idOf('aJson'), 'x')).rejects.toBeInstanceOf(EmitterClosedError);
    await expect(closing.clients.client(cluster.idOf('aJson')).invoke('GetAnswer', 'x')).rejects.toBeInstanceOf(
      EmitterClosedError,
    );
    expect(closing.health().state).toBe('closed');
  });

  test('a StackExchange.Redis connection string works as the .NET servers are configured', async () => {
    const fromConnectionString = createEmitter({
      redis: `127.0.0.1:${cluster.redis.port},abortConnect=false`,
      hub: MIXED_HUB,
    });
    emitters.push(fromConnectionString);
    await fromConnectionString.clients.user('carol').send('ReceiveMessage', 'emitter', 'from a connection string');
    expect(await cluster.deliveredAfterSettling('from a connection string', ['bJson', 'dotnetPack'])).toEqual(
      once(['bJson', 'dotnetPack']),
    );
  });
});
