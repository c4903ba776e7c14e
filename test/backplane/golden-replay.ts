/**
 * The capture's run, redone against live servers (`test/golden/dotnet-backplane.jsonl`, described in
 * `test/golden/CAPTURE.md`): two server processes — of our chat sample (its hub has the capture's hub contract, named
 * `WebAPI.ChatHub` here), or of the ASP.NET Core reference server with its Redis backplane — are driven through the
 * capture's hub calls, step by step, by the same kinds of clients; for every step the suite checks, after putting
 * this run's connection ids, server names and invocation ids in place of the capture's:
 * - the PUBLISHes: same channels, same order, byte-identical payloads (one known difference, scenario 5);
 * - what every client received, and what the calling client got back (result or error text);
 * - the channels subscribed and unsubscribed (PUBSUB CHANNELS before and after), and at startup the SUBSCRIBE order.
 * Scenario 6 runs two more servers with the channel prefix `myapp`. The last test checks no line was left out.
 *
 * Run against ASP.NET Core (`dotnet-golden-live.test.ts`), a failure means .NET no longer publishes what the vendored
 * capture says, and the capture — which every byte-level test of ours relies on — is stale. Run against ours
 * (`dotnet-golden.test.ts`), a failure means we no longer publish what .NET does.
 */
import { decode as decodeMessagePack } from '@msgpack/msgpack';
import Redis from 'ioredis';
import { decodeRedisInvocation, encodeRedisInvocation } from '../../protocol/redis';
import { delay, eventually } from '../support/clients';
import {
  GOLDEN,
  GOLDEN_HUB,
  GoldenClients,
  IdMap,
  RedisMonitor,
  RedisSpy,
  goldenStep,
  subscribedChannels,
  type GoldenClientOptions,
  type Published,
} from '../support/golden-backplane';
import { RedisServer } from '../support/redis-server';
import { startBackplaneReferenceServer } from '../support/dotnet-reference';
import { ServerProcess } from '../support/server-process';

/** Quiet time after a step before "nothing else was published or delivered" is believed. */
const SETTLE_MS = 200;
/** The capture's ack timeout was .NET's 30–35 s; ours is shortened for the test (the text is the same). */
const ACK_TIMEOUT_MS = 1000;
/** .NET's ack timeout: a 30 s threshold checked by a 5 s timer (scenario 3 of the capture). */
const DOTNET_ACK_TIMEOUT_MS: readonly [number, number] = [30_000, 36_000];
const PREFIX_6 = 'myapp';

/** What a step's hub call ended with. */
type Outcome = { result: unknown } | { error: string } | { pending: true };

/** Whose servers the capture is redone against. */
export type GoldenPeer = 'fastify-signalr' | 'ASP.NET Core';

/** A server of the run, of either kind. */
interface PeerServer {
  readonly hubUrl: string;
  readonly serverName: string;
  stop(): Promise<void>;
}

/**
 * Declares the capture's tests against two (four with scenario 6) servers of `peer` on one suite-started
 * redis-server. Call once at the top level of a test file.
 */
export function goldenReplay(peer: GoldenPeer): void {
  const dotnet = peer === 'ASP.NET Core';
  let redis: RedisServer | undefined;
  let admin: Redis | undefined;
  let spy: RedisSpy | undefined;
  let monitor: RedisMonitor | undefined;
  const servers: Record<string, PeerServer | undefined> = {};
  /** The run's clients, by the capture's names. */
  const clients = new GoldenClients();
  const ids = new IdMap();
  /** Golden lines checked by some step. */
  const used = new Set<number>();
  /** Differences from the capture that are known and accepted, for the report at the end. */
  const knownDifferences: string[] = [];

  async function startPeer(label: string, prefix: string): Promise<PeerServer> {
    if (dotnet) {
      // Started one at a time: a server's name is the ack channel that appears on Redis when it starts.
      return startBackplaneReferenceServer({
        redisPort: redis!.port,
        ...(prefix !== '' && { channelPrefix: prefix }),
        // One invocation at a time per client (.NET's default) would hold every later call of jA behind the remote
        // add that waits 30 s for its ack (scenario 3); the capture's calls did not overlap, so this changes no byte.
        env: { MAX_PARALLEL_INVOCATIONS: '2' },
      });
    }
    const server = await ServerProcess.start(label, {
      REDIS_URL: redis!.url,
      CHAT_HUB_NAME: GOLDEN_HUB,
      REDIS_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      ...(prefix !== '' && { REDIS_CHANNEL_PREFIX: prefix }),
    });
    try {
      await server.waitForBackplane('connected');
      return { hubUrl: server.hubUrl, serverName: await server.serverName(), stop: () => server.stop() };
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  async function startServer(label: string, prefix = ''): Promise<PeerServer> {
    const server = await startPeer(label, prefix);
    servers[label] = server;
    clients.addServer(label, () => server.hubUrl);
    ids.set(`server${label}`, server.serverName);
    return server;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url);
    spy = await RedisSpy.start(redis.url);
    monitor = await RedisMonitor.start(redis.url);
  }, 30_000);

  afterAll(async () => {
    await clients.stopAll();
    await Promise.all(Object.values(servers).map((server) => server?.stop()));
    spy?.close();
    monitor?.close();
    admin?.disconnect();
    await redis?.stop();
    if (knownDifferences.length > 0)
      console.log(`Known differences from the .NET capture:\n- ${knownDifferences.join('\n- ')}`);
  }, 30_000);

  /** Connects a client named as in the capture and puts its connection id in place of the capture's. */
  async function connect(name: string, server: string, options: GoldenClientOptions = {}): Promise<void> {
    const client = await clients.connect(name, server, options);
    ids.set(name, client.connection.connectionId!);
  }

  const invoke = (name: string, method: string, ...args: unknown[]) =>
    clients.get(name).connection.invoke(method, ...args);
  const idOf = (name: string) => clients.id(name);

  /** The remote add nobody acknowledges (scenario 3), still running on .NET when its step ends. */
  let unackedAdd: Promise<Outcome & { ms: number }> | undefined;

  /** Options of {@link step}. */
  interface StepOptions {
    /** The publishes are read from MONITOR (the spy is detached during the step). */
    readonly viaMonitor?: boolean;
    /** Compares one publish in a special way (a known difference) instead of byte equality. */
    readonly comparePayload?: (index: number, golden: Buffer, ours: Buffer) => void;
    /** The hub call is still running when the step ends; its outcome is checked later by the test. */
    readonly outcomeLater?: boolean;
  }

  function prefixOf(scenario: string): string {
    return scenario === '6-channel-prefix' ? PREFIX_6 : '';
  }

  /**
   * Runs one step of the capture: `action` makes the hub call(s); then the publishes, deliveries, outcome and
   * subscription changes are compared with the capture's step whose summary is on `line`.
   */
  async function step(line: number, action: () => Promise<Outcome | void>, options: StepOptions = {}): Promise<void> {
    const golden = goldenStep(line);
    const hubPrefix = prefixOf(golden.scenario) + GOLDEN_HUB;
    const spyStart = spy!.messages.length;
    const monitorStart = monitor!.commands.length;
    const mark = clients.mark();
    const channelsBefore = await subscribedChannels(admin!, hubPrefix);

    const outcome = await action();

    // Publishes: the same number, channels and bytes, in the same order.
    const expected = golden.messages;
    const read = (): Published[] =>
      options.viaMonitor ? monitor!.publishes(monitorStart) : spy!.messages.slice(spyStart);
    await eventually(() => read().length >= expected.length, `${expected.length} publish(es) for line ${line}`);
    await delay(SETTLE_MS);
    const ours = read();
    expect(ours.map((message) => message.channel)).toEqual(
      expected.map((message) => ids.channel(message.value.channelTemplate)),
    );
    expected.forEach(({ line: messageLine, value }, index) => {
      const envelope = value.decoded.envelope as { n?: number };
      if (envelope.n === 4 && value.channelTemplate.includes(':connection:')) {
        // A client-result invocation: our invocation id stands for the capture's from here on.
        const goldenId = decodeRedisInvocation(Buffer.from(value.hex, 'hex')).invocationId!;
        ids.setInvocationId(goldenId, decodeRedisInvocation(ours[index].payload).invocationId!);
      }
      const goldenBytes = ids.bytes(value.hex);
      if (options.comparePayload !== undefined) options.comparePayload(index, goldenBytes, ours[index].payload);
      else expect(ours[index].payload.toString('hex')).toBe(goldenBytes.toString('hex'));
      used.add(messageLine);
    });

    // Deliveries: every connected client got exactly what the capture's client of that name got.
    const delivered = golden.summary.delivered ?? {};
    expect(Object.keys(delivered).filter((name) => !clients.names().includes(name))).toEqual([]);
    const { ours: got, expected: want } = await clients.deliveries(mark, delivered, 0);
    expect(got).toEqual(want);

    // The calling client's outcome.
    const summary = golden.summary;
    if (options.outcomeLater === true) expect(outcome).toBeUndefined();
    else if (summary.error !== undefined) expect(outcome).toEqual({ error: summary.error });
    else if (typeof summary.result === 'string' && summary.result.startsWith('still pending'))
      expect(outcome).toEqual({ pending: true });
    else if ('result' in summary) expect(outcome).toEqual({ result: summary.result });

    // Subscriptions made and dropped.
    if (summary.added !== undefined && summary.removed !== undefined) {
      const added = summary.added.map((channel) => ids.channel(channel)).sort();
      const removed = summary.removed.map((channel) => ids.channel(channel)).sort();
      const diff = async () => {
        const after = await subscribedChannels(admin!, hubPrefix);
        return {
          added: after.filter((channel) => !channelsBefore.includes(channel)),
          removed: channelsBefore.filter((channel) => !after.includes(channel)),
        };
      };
      let last = await diff();
      const deadline = Date.now() + 5000;
      while (JSON.stringify(last) !== JSON.stringify({ added, removed }) && Date.now() < deadline) {
        await delay(25);
        last = await diff();
      }
      expect(last).toEqual({ added, removed });
    }
    used.add(line);
  }

  /** A hub call's outcome: its result, or the error text the client got. */
  async function call(name: string, method: string, ...args: unknown[]): Promise<Outcome> {
    try {
      return { result: (await invoke(name, method, ...args)) ?? null };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  /** Checks the channels subscribed (PUBSUB CHANNELS) against a capture summary without a diff. */
  async function expectSubscribed(line: number): Promise<void> {
    const golden = goldenStep(line);
    const prefix = prefixOf(golden.scenario);
    // StackExchange.Redis's own channel is not SignalR's; a server of ours has nothing like it.
    const expected = golden.summary.subscribedTemplate
      .filter((channel) => !channel.startsWith(`${prefix}__Booksleeve`))
      .map((channel) => ids.channel(channel))
      .sort();
    let ours = await subscribedChannels(admin!, prefix + GOLDEN_HUB);
    const deadline = Date.now() + 5000;
    while (JSON.stringify(ours) !== JSON.stringify(expected) && Date.now() < deadline) {
      await delay(25);
      ours = await subscribedChannels(admin!, prefix + GOLDEN_HUB);
    }
    expect(ours).toEqual(expected);
    used.add(line);
  }

  /** Checks a starting server's SUBSCRIBEs of hub channels against the capture's MONITOR lines (`label` A or B). */
  function expectStartupSubscribes(line: number, label: string, from: number): void {
    const entry = GOLDEN.find((candidate) => candidate.line === line);
    if (entry?.kind !== 'startup') throw new Error(`golden line ${line} is no startup line`);
    const expected = entry.value.monitor
      .filter((command) => command.startsWith(`${label} SUBSCRIBE ${GOLDEN_HUB}:`))
      .map((command) => ids.channel(command.slice(label.length + 1)));
    // StackExchange.Redis's own channel (`__Booksleeve_MasterChanged`) is not SignalR's.
    const ours = monitor!.commands
      .slice(from)
      .filter((command) => command.command === 'SUBSCRIBE' && command.args[0].toString('utf8').startsWith(GOLDEN_HUB));
    const oursText = ours.flatMap((command) => command.args.map((arg) => `SUBSCRIBE ${arg.toString('utf8')}`));
    // One SUBSCRIBE per channel, in .NET's order.
    expect(ours.every((command) => command.args.length === 1)).toBe(true);
    expect(oursText).toEqual(expected);
    used.add(line);
  }

  // ---------------------------------------------------------------------------------------------------------------

  test("7-startup: each server subscribes its four channels, one SUBSCRIBE each, in .NET's order", async () => {
    let from = monitor!.commands.length;
    await startServer('A');
    await expectSubscribed(1);
    expectStartupSubscribes(2, 'A', from);
    from = monitor!.commands.length;
    await startServer('B');
    await expectSubscribed(3);
    expectStartupSubscribes(4, 'B', from);

    await step(5, async () => {
      await Promise.all([
        connect('jA', 'A', { user: 'alice' }),
        connect('mA', 'A', { user: 'carol', msgpack: true }),
        connect('jB', 'B', { user: 'bob' }),
        connect('mB', 'B', { user: 'dave', msgpack: true }),
      ]);
    });
    idsLinesUsed('7-startup');
  }, 60_000);

  /** Marks the ids lines of a scenario as used: the ids they list were put in place of ours by the steps. */
  function idsLinesUsed(scenario: string): void {
    for (const entry of GOLDEN) if (entry.kind === 'ids' && entry.value.scenario === scenario) used.add(entry.line);
  }

  test('1-send-message: Clients.All from a JSON caller and from a MessagePack caller', async () => {
    await step(9, () => call('jA', 'SendMessage', 'alice', 'hello'));
    await step(11, () => call('mB', 'SendMessage', 'alice', 'hello'));
    idsLinesUsed('1-send-message');
  });

  test('2-routing: others, allExcept, client(s), groups, groupExcept, othersInGroup, user(s)', async () => {
    await step(14, () => call('jA', 'SendOthers', 'alice', 'others'));
    await step(16, () => call('jA', 'SendAllExcept', [idOf('mB')], 'alice', 'all-except'));
    await step(18, () => call('jA', 'SendToConnection', idOf('jB'), 'alice', 'to-conn-remote'));
    await step(19, () => call('jA', 'SendToConnection', idOf('mA'), 'alice', 'to-conn-local'));
    await step(23, () => call('jA', 'SendToConnections', [idOf('jB'), idOf('mB'), idOf('mA')], 'alice', 'to-conns'));
    await step(24, () => call('jB', 'JoinRoom', 'r1'));
    await step(25, () => call('mB', 'JoinRoom', 'r1'));
    await step(26, () => call('mA', 'JoinRoom', 'r2'));
    await step(29, () => call('jA', 'SendToRooms', ['r1', 'r2'], 'alice', 'to-rooms'));
    await step(31, () => call('jA', 'SendRoomExcept', 'r1', [idOf('jB')], 'alice', 'room-except'));
    await step(33, () => call('mB', 'SendOthersInRoom', 'r1', 'dave', 'others-in-room'));
    await step(35, () => call('jA', 'SendToUser', 'bob', 'alice', 'to-user'));
    await step(38, () => call('jA', 'SendToUsers', ['bob', 'carol'], 'alice', 'to-users'));
    await step(39, async () => {
      await call('jB', 'LeaveRoom', 'r1');
      await call('mB', 'LeaveRoom', 'r1');
      await call('mA', 'LeaveRoom', 'r2');
    });
    idsLinesUsed('2-routing');
  });

  test('3-groups: local joins, remote add/remove with acks (one command counter per server), the ack timeout', async () => {
    await step(41, () => call('mA', 'JoinRoom', 'r3'));
    await step(42, () => call('mA', 'LeaveRoom', 'r3'));
    await step(45, () => call('jA', 'AddToRoom', idOf('jB'), 'r4'));
    await step(47, () => call('jA', 'SendToRoom', 'r4', 'alice', 'to-r4'));
    await step(50, () => call('jA', 'AddToRoom', idOf('jB'), 'r4'));
    await step(53, () => call('jA', 'RemoveFromRoom', idOf('jB'), 'r4'));
    await step(56, () => call('mA', 'AddToRoom', idOf('mB'), 'r7'));
    await step(57, () => call('jA', 'AddToRoom', idOf('mA'), 'r6'));
    await step(60, async () => {
      await call('jA', 'RemoveFromRoom', idOf('mB'), 'r7');
      await call('jA', 'RemoveFromRoom', idOf('mA'), 'r6');
    });
    if (dotnet) {
      // .NET's ack timeout takes 30–35 s: the step checks what was published, the call's end is awaited later.
      await step(
        62,
        async () => {
          const started = Date.now();
          unackedAdd = call('jA', 'AddToRoom', 'nobody-owns-this-id', 'r5').then((outcome) => ({
            ...outcome,
            ms: Date.now() - started,
          }));
        },
        { outcomeLater: true },
      );
    } else {
      await step(62, () => call('jA', 'AddToRoom', 'nobody-owns-this-id', 'r5'));
    }
    idsLinesUsed('3-groups');
  });

  test('4-client-results: values, a client without a handler, a client that leaves, unknown connections', async () => {
    await connect('nhJ', 'B', { getAnswer: null });
    await connect('nhM', 'B', { getAnswer: null, msgpack: true });
    await step(66, () => call('jA', 'AskClient', idOf('jB')));
    await step(69, () => call('jA', 'AskClient', idOf('mB')));
    await step(72, () => call('mB', 'AskClient', idOf('jA')));
    await step(75, () => call('jA', 'AskClient', idOf('nhJ')));
    await step(78, () => call('jA', 'AskClient', idOf('nhM')));
    for (const [line, name, msgpack] of [
      [81, 'nvJ', false],
      [84, 'nvM', true],
    ] as const) {
      let reached!: () => void;
      const asked = new Promise<void>((resolve) => (reached = resolve));
      await connect(name, 'B', {
        msgpack,
        getAnswer: () => {
          reached();
          return new Promise(() => undefined);
        },
      });
      await step(line, async () => {
        const outcome = call('jA', 'AskClient', idOf(name));
        await asked;
        await clients.stop(name);
        return outcome;
      });
    }
    // While the spy's PSUBSCRIBE * is attached it counts as a receiver, so the call waits for an answer for ever.
    let pending!: Promise<Outcome>;
    await step(86, async () => {
      pending = call('jA', 'AskClient', 'no-such-connection');
      const settled = await Promise.race([pending.then(() => true), delay(500).then(() => false)]);
      return settled ? pending : { pending: true };
    });
    // Without a pattern subscriber PUBLISH reaches nobody and the call fails at once; its bytes come from MONITOR.
    await spy!.detach();
    try {
      await step(88, () => call('jA', 'AskClient', 'no-such-connection-2'), { viaMonitor: true });
    } finally {
      await spy!.attach();
    }
    idsLinesUsed('4-client-results');
    // The abandoned call ends when its caller leaves (at the end of the run); it must not fail the test then.
    void pending.catch(() => undefined);
  });

  test(`5-send-values: every kind of value, byte-identical${dotnet ? '' : ' but for one integer width'}`, async () => {
    await step(
      92,
      () => call('jA', 'SendValues'),
      dotnet
        ? {}
        : {
            comparePayload: (_index, golden, ours) => {
              const expected = decodeRedisInvocation(golden);
              const actual = decodeRedisInvocation(ours);
              expect(actual.excludedConnectionIds).toEqual(expected.excludedConnectionIds);
              expect([...actual.messages.keys()]).toEqual(['json', 'messagepack']);
              expect(Buffer.from(actual.messages.get('json')!).toString('hex')).toBe(
                Buffer.from(expected.messages.get('json')!).toString('hex'),
              );
              // .NET boxes the 1 of `Dictionary<string, object>{a: 1}` as an Int32 and MessagePack-CSharp writes a boxed
              // Int32 as int32 (`d2 00000001`); a JavaScript number has no such box, so we write the smallest form (`01`).
              const goldenBody = Buffer.from(expected.messages.get('messagepack')!).subarray(1);
              const ourBody = Buffer.from(actual.messages.get('messagepack')!).subarray(1);
              const boxed = Buffer.from('a161d200000001', 'hex');
              expect(goldenBody.indexOf(boxed)).toBeGreaterThan(0);
              const withFixint = Buffer.concat([
                goldenBody.subarray(0, goldenBody.indexOf(boxed)),
                Buffer.from('a16101', 'hex'),
                goldenBody.subarray(goldenBody.indexOf(boxed) + boxed.length),
              ]);
              expect(ourBody.toString('hex')).toBe(withFixint.toString('hex'));
              expect(decodeMessagePack(ourBody)).toEqual(decodeMessagePack(goldenBody));
              // Everything around it — the envelope, the bin length, the VarInt prefix — follows from the shorter body.
              const rebuilt = encodeRedisInvocation({
                excludedConnectionIds: [],
                messages: new Map([
                  ['json', expected.messages.get('json')!],
                  ['messagepack', Buffer.concat([Buffer.from([ourBody.length]), ourBody])],
                ]),
              });
              expect(ours.toString('hex')).toBe(rebuilt.toString('hex'));
              knownDifferences.push(
                'scenario 5 (SendValues): the value 1 inside a Dictionary<string, object> is int32 `d2 00000001` in .NET ' +
                  '(a boxed Int32) and a positive fixint `01` here; the payloads decode to the same values.',
              );
            },
          },
    );
    idsLinesUsed('5-send-values');
  });

  if (dotnet) {
    test("3-groups: the add nobody acknowledged fails after .NET's ack timeout, as in the capture", async () => {
      const golden = goldenStep(62).summary;
      const outcome = await unackedAdd!;
      expect({ error: 'error' in outcome ? outcome.error : outcome }).toEqual({ error: golden.error });
      expect(outcome.ms).toBeGreaterThanOrEqual(DOTNET_ACK_TIMEOUT_MS[0] - 100);
      expect(outcome.ms).toBeLessThanOrEqual(DOTNET_ACK_TIMEOUT_MS[1]);
    }, 60_000);
  }

  test('7-startup: stopped clients leave their connection and user channels', async () => {
    await step(93, async () => {
      for (const name of clients.names()) await clients.stop(name);
    });
  });

  test('6-channel-prefix: the prefix before every channel, never inside payloads', async () => {
    await startServer('A6', PREFIX_6);
    await startServer('B6', PREFIX_6);
    await expectSubscribed(94);
    await step(95, async () => {
      await connect('j6A', 'A6', { user: 'alice' });
      await connect('m6B', 'B6', { user: 'bob', msgpack: true });
    });
    await step(98, () => call('j6A', 'SendMessage', 'alice', 'hello'));
    await step(101, () => call('j6A', 'AddToRoom', idOf('m6B'), 'r1'));
    await step(104, () => call('j6A', 'AskClient', idOf('m6B')));
    idsLinesUsed('6-channel-prefix');
  }, 60_000);

  test('every line of the capture was compared', () => {
    const unused = GOLDEN.filter((entry) => !used.has(entry.line)).map((entry) => entry.line);
    expect(unused).toEqual([]);
  });
}
