/**
 * What .NET servers publish, delivered by ours. The test plays the capture's ASP.NET Core servers: it publishes
 * every payload they published (`test/golden/dotnet-backplane.jsonl`, with our clients' connection ids in place of
 * theirs; the .NET server names stay) into the Redis of two server processes of ours — four with scenario 6's
 * channel prefix — and checks that:
 * - our JSON and MessagePack clients receive what the capture's clients received from .NET;
 * - group commands are executed (the group channel subscribed first) and acknowledged on the sender's ack channel,
 *   with the capture's bytes;
 * - client-result invocations reach the client and its answer — or "Connection disconnected." — comes back on the
 *   return channel named in the payload, with the capture's bytes.
 * Beyond .NET: a payload with only `json` (what a JSON-only .NET server publishes) still reaches MessagePack clients,
 * and one with only `messagepack` reaches JSON clients, converted instead of aborting the connection.
 */
import Redis from 'ioredis';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import type { InvocationMessage } from '../../protocol/messages';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { encodeRedisInvocation } from '../../protocol/redis';
import { eventually } from '../support/clients';
import {
  GOLDEN,
  GOLDEN_HUB,
  GOLDEN_IDS,
  GoldenClients,
  IdMap,
  RedisSpy,
  goldenStep,
  subscribedChannels,
  type GoldenClientOptions,
} from '../support/golden-backplane';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const SETTLE_MS = 200;
const PREFIX_6 = 'myapp';

let redis: RedisServer | undefined;
let publisher: Redis | undefined;
let admin: Redis | undefined;
let spy: RedisSpy | undefined;
const servers: ServerProcess[] = [];
const clients = new GoldenClients();
const ids = new IdMap();
const used = new Set<number>();

beforeAll(async () => {
  redis = await RedisServer.start();
  const base = { REDIS_URL: redis.url, CHAT_HUB_NAME: GOLDEN_HUB };
  const labels: [string, Record<string, string>][] = [
    ['A', base],
    ['B', base],
    ['A6', { ...base, REDIS_CHANNEL_PREFIX: PREFIX_6 }],
    ['B6', { ...base, REDIS_CHANNEL_PREFIX: PREFIX_6 }],
  ];
  const results = await Promise.allSettled(labels.map(([label, env]) => ServerProcess.start(label, env)));
  for (const result of results) if (result.status === 'fulfilled') servers.push(result.value);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all(servers.map((server) => server.waitForBackplane('connected')));
  for (const server of servers) clients.addServer(server.label, () => server.hubUrl);
  publisher = new Redis(redis.url);
  admin = new Redis(redis.url);
  spy = await RedisSpy.start(redis.url);
  // The .NET servers keep their names: our servers answer them on their ack and return channels.
  for (const server of ['serverA', 'serverB', 'serverA6', 'serverB6']) ids.set(server, GOLDEN_IDS.get(server)!);
}, 60_000);

afterAll(async () => {
  await clients.stopAll();
  await stopAll(...servers);
  spy?.close();
  publisher?.disconnect();
  admin?.disconnect();
  await redis?.stop();
}, 30_000);

async function connect(name: string, server: string, options: GoldenClientOptions = {}): Promise<void> {
  await clients.connect(name, server, options);
  ids.set(name, clients.id(name));
}

/** Channels a .NET server publishes to be answered on, or to reach clients: everything but acks and replies. */
function isRequest(channelTemplate: string): boolean {
  return !/:internal:(ack|return):/.test(channelTemplate);
}

/** Options of {@link replay}. */
interface ReplayOptions {
  /** Runs after the requests are published, before the answers are awaited (a client leaving, say). */
  readonly then?: () => Promise<void>;
  /** Called when our server's ack arrives, before anything else happens. */
  readonly onAnswer?: (channel: string) => Promise<void>;
}

/**
 * Publishes the requests of the capture's step `line` as the .NET server did, and checks what our servers
 * answered (acks, client-result replies: the capture's lines, byte for byte) and what our clients received.
 */
async function replay(line: number, options: ReplayOptions = {}): Promise<void> {
  const golden = goldenStep(line);
  const requests = golden.messages.filter(({ value }) => isRequest(value.channelTemplate));
  const answers = golden.messages.filter(({ value }) => !isRequest(value.channelTemplate));
  const mark = clients.mark();
  const spyStart = spy!.messages.length;
  for (const { line: requestLine, value } of requests) {
    await publisher!.publish(ids.channel(value.channelTemplate), ids.bytes(value.hex));
    used.add(requestLine);
  }
  await options.then?.();

  // Our servers' answers, on the channels the .NET servers listen on.
  const ours = () => spy!.messages.slice(spyStart).filter((message) => !isRequest(message.channel));
  await eventually(() => ours().length >= answers.length, `${answers.length} answer(s) to line ${line}`);
  if (options.onAnswer !== undefined) for (const answer of ours()) await options.onAnswer(answer.channel);
  const { ours: got, expected } = await clients.deliveries(mark, golden.summary.delivered ?? {}, SETTLE_MS);
  expect(ours().map((message) => [message.channel, message.payload.toString('hex')])).toEqual(
    answers.map(({ value }) => [ids.channel(value.channelTemplate), ids.bytes(value.hex).toString('hex')]),
  );
  for (const { line: answerLine } of answers) used.add(answerLine);
  expect(got).toEqual(expected);
  used.add(line);
}

const join = (name: string, room: string) => clients.get(name).connection.invoke('JoinRoom', room);
const leave = (name: string, room: string) => clients.get(name).connection.invoke('LeaveRoom', room);

test('our clients connect; .NET sends to all (1-send-message)', async () => {
  await Promise.all([
    connect('jA', 'A', { user: 'alice' }),
    connect('mA', 'A', { user: 'carol', msgpack: true }),
    connect('jB', 'B', { user: 'bob' }),
    connect('mB', 'B', { user: 'dave', msgpack: true }),
  ]);
  await replay(9);
  await replay(11);
}, 30_000);

test('2-routing: others, allExcept, connection(s), groups, groupExcept, othersInGroup, user(s) from .NET', async () => {
  for (const line of [14, 16, 18, 23]) await replay(line);
  // The capture's group members joined on their own servers (no publish); ours do the same.
  await join('jB', 'r1');
  await join('mB', 'r1');
  await join('mA', 'r2');
  for (const line of [29, 31, 33, 35, 38]) await replay(line);
  await leave('jB', 'r1');
  await leave('mB', 'r1');
  await leave('mA', 'r2');
});

test("3-groups: .NET's group commands are executed and acknowledged to its ack channel", async () => {
  const hasGroup = async (group: string) =>
    (await subscribedChannels(admin!, `${GOLDEN_HUB}:group:`)).includes(`${GOLDEN_HUB}:group:${group}`);
  // Acknowledged only once the group channel is subscribed, so .NET's next send reaches the new member.
  await replay(45, { onAnswer: async () => expect(await hasGroup('r4')).toBe(true) });
  await replay(47);
  await replay(50);
  await replay(53, { onAnswer: async () => expect(await hasGroup('r4')).toBe(false) });
  await replay(56, { onAnswer: async () => expect(await hasGroup('r7')).toBe(true) });
  await replay(60, { onAnswer: async () => expect(await hasGroup('r7')).toBe(false) });
  // A command for a connection nobody owns: no answer from any server of ours.
  await replay(62);
});

test("4-client-results: .NET's invocations reach our clients and the answers go back on its return channels", async () => {
  await connect('nhJ', 'B', { getAnswer: null });
  await connect('nhM', 'B', { getAnswer: null, msgpack: true });
  for (const line of [66, 69, 72, 75, 78]) await replay(line);
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
    // The client leaves without answering: our server answers for it.
    await replay(line, {
      then: async () => {
        await asked;
        await clients.stop(name);
      },
    });
  }
  // Invocations for connections nobody owns: nobody answers.
  await replay(86);
  await replay(88);
});

test('5-send-values: every kind of value reaches JSON and MessagePack clients as .NET delivers it', async () => {
  await replay(92);
});

test('6-channel-prefix: prefixed channels; the unprefixed return channel inside gets our prefix when answering', async () => {
  await connect('j6A', 'A6', { user: 'alice' });
  await connect('m6B', 'B6', { user: 'bob', msgpack: true });
  await replay(98);
  await replay(101);
  await replay(104);
});

test('every payload the .NET servers published was replayed or answered', () => {
  const messages = GOLDEN.filter((entry) => entry.kind === 'message').map((entry) => entry.line);
  expect(messages.filter((line) => !used.has(line))).toEqual([]);
});

// ---------------------------------------------------------------------------------------------------------------
// Beyond .NET

describe('a payload lacking a protocol is converted, not fatal', () => {
  const all = `${GOLDEN_HUB}:all`;
  const invocation: InvocationMessage = { type: 1, target: 'ReceiveMessage', arguments: ['server', 'héllo ✓ 42'] };

  test('only `json` (a JSON-only .NET server): MessagePack clients get it too, and stay connected', async () => {
    const mark = clients.mark();
    const payload = encodeRedisInvocation({
      excludedConnectionIds: [clients.id('jA')],
      messages: new Map([['json', jsonHubProtocol.writeMessage(invocation)]]),
    });
    await publisher!.publish(all, payload);
    const message = ['ReceiveMessage', 'server', 'héllo ✓ 42'];
    // Everyone of the hub but jA (excluded); the prefixed hub's clients are on other channels.
    const { ours, expected } = await clients.deliveries(
      mark,
      { mA: [message], jB: [message], mB: [message], nhJ: [message], nhM: [message] },
      SETTLE_MS,
    );
    expect(ours).toEqual(expected);
    // The MessagePack clients are still connected and served.
    for (const name of ['mA', 'mB', 'nhM']) expect(await clients.get(name).connection.invoke('Echo', name)).toBe(name);
  });

  test('only `messagepack`: JSON clients get it, values intact', async () => {
    const mark = clients.mark();
    const values: InvocationMessage = {
      type: 1,
      target: 'Values',
      arguments: [1, -1, 70000, 3.5, true, null, 'x', { a: [1, 2] }],
    };
    const payload = encodeRedisInvocation({
      excludedConnectionIds: [],
      messages: new Map([['messagepack', messagePackHubProtocol.writeMessage(values)]]),
    });
    await publisher!.publish(`${GOLDEN_HUB}:user:bob`, payload);
    const message = ['Values', 1, -1, 70000, 3.5, true, null, 'x', { a: [1, 2] }];
    const { ours, expected } = await clients.deliveries(mark, { jB: [message] }, SETTLE_MS);
    expect(ours).toEqual(expected);
    expect(await clients.get('jB').connection.invoke('Echo', 'still here')).toBe('still here');
  });
});
