/**
 * Golden tests of the Redis backplane wire against what two real ASP.NET Core servers published on one Redis
 * (`test/golden/dotnet-backplane.jsonl`, described in `test/golden/CAPTURE.md`). Every line of the file is
 * used by some assertion, and the last test checks that none was left out.
 */
import { readFileSync } from 'node:fs';
import {
  RedisChannels,
  decodeRedisAck,
  decodeRedisCompletion,
  decodeRedisGroupCommand,
  decodeRedisInvocation,
  encodeRedisAck,
  encodeRedisCompletion,
  encodeRedisGroupCommand,
  encodeRedisInvocation,
  parseRedisChannelName,
  type RedisChannel,
  type RedisNamedChannel,
} from '../../protocol';
import {
  findGoldenFile,
  sharedGoldenFile,
  loadGolden,
  mergeIds,
  substitute,
  trailingPlaceholder,
  type GoldenLine,
  type HubPayload,
  type MessageLine,
  type SummaryLine,
} from './helpers/golden';
import { decodeTree, type MsgTree } from './helpers/msgpack-tree';

const HUB = 'WebAPI.ChatHub';
/** Scenario 6 ran with StackExchange.Redis `ChannelPrefix = "myapp"`; the others without a prefix. */
const PREFIX_BY_SCENARIO: Readonly<Record<string, string>> = { '6-channel-prefix': 'myapp' };
/** StackExchange.Redis's own channel, subscribed by every .NET server next to the hub's channels. */
const SE_REDIS_CHANNEL = '__Booksleeve_MasterChanged';

const golden = loadGolden(findGoldenFile());

test("the repository's copy of the capture is the shared original, byte for byte", () => {
  const shared = sharedGoldenFile();
  // A clone without the shared folder beside it has only the copy; CI has both.
  if (shared !== undefined) expect(readFileSync(findGoldenFile()).equals(readFileSync(shared))).toBe(true);
  expect(golden.length).toBe(104);
});
const ids = mergeIds(golden);
const used = new Set<number>();

function prefixOf(scenario: string): string {
  return PREFIX_BY_SCENARIO[scenario] ?? '';
}

/** The server name of a `publishedBy` / MONITOR label (`A`, `B`, `A6`, `B6`). */
function serverName(label: string): string {
  const name = ids.get(`server${label}`);
  if (name === undefined) throw new Error(`No server name for ${label}`);
  return name;
}

/** Channels as the server `label` of `scenario` has them. */
function channelsOf(scenario: string, label: string): RedisChannels {
  return new RedisChannels({ hubName: HUB, serverName: serverName(label), channelPrefix: prefixOf(scenario) });
}

/** A parser for received wire channels of `scenario` (the server name plays no part in parsing). */
function parserOf(scenario: string): RedisChannels {
  return new RedisChannels({ hubName: HUB, serverName: 'parser', channelPrefix: prefixOf(scenario) });
}

const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/**
 * Parses a wire channel and checks our builder gives it back; when the template names the channel's id by a
 * placeholder (`…:connection:{jB}`), checks the parsed name is that id.
 */
function checkChannel(scenario: string, wireChannel: string, template: string): RedisChannel {
  const channels = parserOf(scenario);
  const parsed = channels.parse(wireChannel);
  expect(parsed).toBeDefined();
  const channel = parsed as RedisChannel;
  expect(channels.build(channel)).toBe(wireChannel);
  expect(substitute(template, ids)).toBe(wireChannel);
  const placeholder = trailingPlaceholder(template);
  if (placeholder !== undefined) expect((channel as RedisNamedChannel).name).toBe(ids.get(placeholder));
  return channel;
}

// ---------------------------------------------------------------------------------------------------------
// Reading the capture's typed MessagePack trees

function node<T extends MsgTree>(tree: MsgTree, t?: string): T {
  if (t !== undefined) expect(tree.t).toBe(t);
  return tree as T;
}
const itemsOf = (tree: MsgTree): MsgTree[] => node<{ t: string; n: number; items: MsgTree[] }>(tree).items;
const entriesOf = (tree: MsgTree): [MsgTree, MsgTree][] =>
  node<{ t: string; n: number; entries: [MsgTree, MsgTree][] }>(tree).entries;
const valueOf = <T>(tree: MsgTree): T => node<{ t: string; v: T }>(tree).v;
const binHexOf = (tree: MsgTree): string => node<{ t: string; len: number; hex: string }>(tree).hex;

/** Decodes a framed MessagePack hub message's VarInt length prefix (docs/protocol.md §2.5): [length, prefix bytes]. */
function readVarInt(bytes: Uint8Array): [number, number] {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[i];
    length += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [length, i + 1];
  }
  throw new Error('VarInt longer than 5 bytes');
}

/** Checks that framed hub message bytes are what the capture decoded them to (JSON text, or MessagePack tree). */
function checkHubPayload(bytes: Uint8Array, payload: HubPayload): void {
  if (payload.framing === '0x1e-terminated') {
    expect(payload.endsWith1e).toBe(true);
    const text = payload.text.map((record) => `${record}\u001e`).join('');
    expect(hex(bytes)).toBe(Buffer.from(text, 'utf8').toString('hex'));
  } else {
    const [length, prefixLength] = readVarInt(bytes);
    expect(hex(bytes.subarray(0, prefixLength))).toBe(payload.prefixHex);
    expect(length).toBe(payload.length);
    expect(bytes.length - prefixLength).toBe(length);
    expect(decodeTree(bytes.subarray(prefixLength))).toEqual(payload.body);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Message lines

const messageLines = golden.filter((entry) => entry.kind === 'message');

/** Checks one invocation line: decode, the hub messages inside, encode, and the return channel. */
function checkInvocation(message: MessageLine, data: Buffer): void {
  const envelope = itemsOf(message.decoded.envelope);
  const excluded = itemsOf(envelope[0]).map((id) => valueOf<string>(id));
  const entries = entriesOf(envelope[1]).map(([name, value]): [string, string] => [
    valueOf<string>(name),
    binHexOf(value),
  ]);
  const expectsReply = envelope.length === 4;

  // Decode: every value the capture lists, map in wire order, views not copies.
  const invocation = decodeRedisInvocation(data);
  expect(invocation.excludedConnectionIds).toEqual(excluded);
  expect([...invocation.messages].map(([name, bytes]) => [name, hex(bytes)])).toEqual(entries);
  for (const bytes of invocation.messages.values()) expect(bytes.buffer).toBe(data.buffer);
  expect(invocation.invocationId).toBe(expectsReply ? valueOf<string>(envelope[2]) : undefined);
  expect(invocation.returnChannel).toBe(expectsReply ? valueOf<string>(envelope[3]) : undefined);

  // The hub messages inside, per protocol.
  const payloads = message.decoded.hubPayloads;
  expect(Object.keys(payloads).sort()).toEqual([...invocation.messages.keys()].sort());
  for (const [name, bytes] of invocation.messages) checkHubPayload(bytes, payloads[name]);

  // Encode from the decoded values: the same bytes.
  const encoded = encodeRedisInvocation({
    excludedConnectionIds: excluded,
    messages: new Map(entries.map(([name, bytes]) => [name, Buffer.from(bytes, 'hex')])),
    ...(expectsReply && { invocationId: valueOf<string>(envelope[2]), returnChannel: valueOf<string>(envelope[3]) }),
  });
  expect(encoded.toString('hex')).toBe(message.hex);

  if (expectsReply) {
    // The return channel inside is unprefixed and names the publishing server.
    const returnChannel = parseRedisChannelName(HUB, invocation.returnChannel as string);
    expect(returnChannel).toEqual({ kind: 'internal:return', name: serverName(message.publishedBy) });
    expect(invocation.returnChannel).toBe(channelsOf('', message.publishedBy).returnResultsName);
  }
}

function checkGroupCommand(message: MessageLine, data: Buffer): void {
  const [id, server, action, group, connection] = itemsOf(message.decoded.envelope);
  const command = {
    id: valueOf<number>(id),
    serverName: valueOf<string>(server),
    action: valueOf<number>(action),
    groupName: valueOf<string>(group),
    connectionId: valueOf<string>(connection),
  };
  expect(decodeRedisGroupCommand(data)).toEqual(command);
  expect(encodeRedisGroupCommand(command).toString('hex')).toBe(message.hex);
  // The sender names itself, so the owner of the connection knows where to ack.
  expect(command.serverName).toBe(serverName(message.publishedBy));
  expect(message.decoded.hubPayloads).toEqual({});
}

function checkAck(message: MessageLine, data: Buffer): void {
  const [id] = itemsOf(message.decoded.envelope);
  expect(decodeRedisAck(data)).toBe(valueOf<number>(id));
  expect(encodeRedisAck(valueOf<number>(id)).toString('hex')).toBe(message.hex);
  expect(message.decoded.hubPayloads).toEqual({});
}

function checkCompletion(message: MessageLine, data: Buffer): void {
  const [name, bytes] = itemsOf(message.decoded.envelope);
  const reply = { protocolName: valueOf<string>(name), completion: Buffer.from(binHexOf(bytes), 'hex') };
  const decoded = decodeRedisCompletion(data);
  expect(decoded.protocolName).toBe(reply.protocolName);
  expect(hex(decoded.completion)).toBe(hex(reply.completion));
  expect(decoded.completion.buffer).toBe(data.buffer);
  expect(encodeRedisCompletion(reply).toString('hex')).toBe(message.hex);
  const payloads = message.decoded.hubPayloads;
  expect(Object.keys(payloads)).toEqual([`reply:${reply.protocolName}`]);
  checkHubPayload(decoded.completion, payloads[`reply:${reply.protocolName}`]);
}

describe('golden: every message .NET published', () => {
  it.each(messageLines.map((entry) => [entry.line, entry]))('line %i', (line, entry) => {
    const message = (entry as Extract<GoldenLine, { kind: 'message' }>).value;
    const data = Buffer.from(message.hex, 'hex');
    expect(data.length).toBe(message.bytes);
    // The capture's typed tree is what the bytes hold (checks the oracle and the capture agree).
    expect(decodeTree(data)).toEqual(message.decoded.envelope);

    const channel = checkChannel(message.scenario, message.channel, message.channelTemplate);
    switch (channel.kind) {
      case 'all':
      case 'connection':
      case 'group':
      case 'user':
        checkInvocation(message, data);
        break;
      case 'internal:groups':
        checkGroupCommand(message, data);
        break;
      case 'internal:ack':
        checkAck(message, data);
        break;
      case 'internal:return':
        checkCompletion(message, data);
        break;
    }
    used.add(line as number);
  });

  it('acks go to the sender of the group command, replies to prefix + the return channel of the invocation', () => {
    let pendingCommand: { sender: string; id: number } | undefined;
    let pendingReturn: string | undefined;
    let checked = 0;
    for (const { value: message } of messageLines as Extract<GoldenLine, { kind: 'message' }>[]) {
      const channels = parserOf(message.scenario);
      const channel = channels.parse(message.channel) as RedisChannel;
      const data = Buffer.from(message.hex, 'hex');
      if (channel.kind === 'internal:groups') {
        const command = decodeRedisGroupCommand(data);
        pendingCommand = { sender: command.serverName, id: command.id };
      } else if (channel.kind === 'internal:ack') {
        expect(pendingCommand).toBeDefined();
        expect(channel.name).toBe(pendingCommand?.sender);
        expect(message.channel).toBe(channels.ackOf(pendingCommand?.sender as string));
        expect(decodeRedisAck(data)).toBe(pendingCommand?.id);
        checked++;
      } else if (channel.kind === 'internal:return') {
        expect(pendingReturn).toBeDefined();
        // The answering server's StackExchange.Redis writes its prefix before the unprefixed name it was given.
        expect(message.channel).toBe(channels.toWire(pendingReturn as string));
        checked++;
        pendingReturn = undefined;
      } else {
        pendingReturn = decodeRedisInvocation(data).returnChannel ?? pendingReturn;
      }
    }
    // 6 acks and 8 replies in the capture.
    expect(checked).toBe(14);
  });

  it('group command ids count up per sending server, shared by adds and removes', () => {
    const idsBySender = new Map<string, number[]>();
    for (const { value: message } of messageLines as Extract<GoldenLine, { kind: 'message' }>[]) {
      if (parserOf(message.scenario).parse(message.channel)?.kind !== 'internal:groups') continue;
      const command = decodeRedisGroupCommand(Buffer.from(message.hex, 'hex'));
      idsBySender.set(command.serverName, [...(idsBySender.get(command.serverName) ?? []), command.id]);
    }
    expect(idsBySender.get(serverName('A'))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(idsBySender.get(serverName('A6'))).toEqual([1]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Step summaries: the channels subscribed after each step

const summaryLines = golden.filter((entry) => entry.kind === 'summary');

/** Message lines between the previous summary line and this one: the step's publishes. */
function stepMessages(line: number): MessageLine[] {
  const messages: MessageLine[] = [];
  for (const entry of golden) {
    if (entry.line >= line) break;
    if (entry.kind === 'summary') messages.length = 0;
    else if (entry.kind === 'message') messages.push(entry.value);
  }
  return messages;
}

describe('golden: channels subscribed after each step', () => {
  it.each(summaryLines.map((entry) => [entry.line, entry]))('line %i', (line, entry) => {
    const summary: SummaryLine = (entry as Extract<GoldenLine, { kind: 'summary' }>).value;
    const { scenario } = summary;
    const channels = parserOf(scenario);
    expect(summary.subscribed).toHaveLength(summary.subscribedTemplate.length);

    const servers = new Set<string>();
    summary.subscribed.forEach((wireChannel, i) => {
      if (channels.stripPrefix(wireChannel) === SE_REDIS_CHANNEL) return; // StackExchange.Redis's, not SignalR's
      const channel = checkChannel(scenario, wireChannel, summary.subscribedTemplate[i]);
      if (channel.kind === 'internal:ack' || channel.kind === 'internal:return') servers.add(channel.name);
    });
    // Only StackExchange.Redis's own channel is not ours, and it is there once, with the prefix.
    expect(summary.subscribed.filter((c) => channels.parse(c) === undefined)).toEqual([
      prefixOf(scenario) + SE_REDIS_CHANNEL,
    ]);

    // Every running server has its four startup channels.
    expect(servers.size).toBeGreaterThan(0);
    for (const server of servers) {
      const own = new RedisChannels({ hubName: HUB, serverName: server, channelPrefix: prefixOf(scenario) });
      expect(summary.subscribed).toEqual(expect.arrayContaining(own.serverSubscriptions()));
    }

    // Channels added and removed in the step, and SUBSCRIBE/UNSUBSCRIBE/PUBLISH commands, are ours too.
    for (const template of [...(summary.added ?? []), ...(summary.removed ?? [])]) {
      checkChannel(scenario, substitute(template, ids), template);
    }
    const publishes: string[] = [];
    for (const command of summary.redisCommands ?? []) {
      const [label, verb, template] = command.split(' ');
      expect(['SUBSCRIBE', 'UNSUBSCRIBE', 'PUBLISH']).toContain(verb);
      expect(ids.has(`server${label}`)).toBe(true);
      checkChannel(scenario, substitute(template, ids), template);
      if (verb === 'PUBLISH') publishes.push(command);
    }
    // The step's PUBLISH commands are the message lines before this summary, in order.
    const messages = stepMessages(line as number);
    expect(publishes).toEqual(messages.map((m) => `${m.publishedBy} PUBLISH ${m.channelTemplate} <payload>`));
    if (summary.publishes !== undefined) expect(summary.publishes).toBe(messages.length);
    used.add(line as number);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Startup: the SUBSCRIBE order of a starting server

describe('golden: server startup', () => {
  const startupLines = golden.filter((entry) => entry.kind === 'startup');

  it.each(startupLines.map((entry) => [entry.line, entry]))(
    'line %i subscribes in our documented order',
    (line, entry) => {
      const startup = (entry as Extract<GoldenLine, { kind: 'startup' }>).value;
      const label = startup.monitor[0].split(' ')[0];
      const channels = channelsOf(startup.scenario, label);
      const subscribes = startup.monitor
        .map((command) => command.split(' '))
        .filter(([server, verb]) => server === label && verb === 'SUBSCRIBE')
        .map(([, , template]) => substitute(template, ids));
      // StackExchange.Redis subscribes its own channel first; then SignalR's four, one command each.
      expect(subscribes[0]).toBe(SE_REDIS_CHANNEL);
      expect(subscribes.slice(1)).toEqual(channels.serverSubscriptions());
      expect(subscribes.slice(1)).toEqual([
        `${HUB}:all`,
        `${HUB}:internal:groups`,
        `${HUB}:internal:ack:${serverName(label)}`,
        `${HUB}:internal:return:${serverName(label)}`,
      ]);
      used.add(line as number);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// Ids

describe('golden: ids', () => {
  const idsLines = golden.filter((entry) => entry.kind === 'ids');

  it.each(idsLines.map((entry) => [entry.line, entry]))(
    'line %i has ids of the forms our channels carry',
    (line, entry) => {
      const { ids: lineIds } = (entry as Extract<GoldenLine, { kind: 'ids' }>).value;
      for (const [key, value] of Object.entries(lineIds)) {
        if (key.startsWith('server')) {
          // .NET's `{MachineName}_{Guid:N}` with machine name `vm`: 35 chars, written as str8 (`d9 23`).
          expect(value).toMatch(/^vm_[0-9a-f]{32}$/);
          const command = encodeRedisGroupCommand({
            id: 1,
            serverName: value as string,
            action: 1,
            groupName: 'g',
            connectionId: 'c',
          });
          expect(command.subarray(2, 4).toString('hex')).toBe('d923');
        } else if (key === 'users') {
          // User ids appear as user channels once their connections are up.
          for (const user of Object.values(value as Record<string, string>)) {
            const channel = `${HUB}:user:${user}`;
            expect(summaryLines.some((s) => (s.value as SummaryLine).subscribed.includes(channel))).toBe(true);
          }
        } else if (key === 'invocationIds') {
          // Standard base64 of GUID bytes, "==" trimmed; they appear in the invocations' envelopes.
          for (const id of Object.values(value as Record<string, string>)) {
            expect(id).toMatch(/^[A-Za-z0-9+/]{22}$/);
            expect(messageLines.some((m) => invocationIdOf(m) === id)).toBe(true);
          }
        } else if (key === 'nobody') {
          expect(value).toBe('nobody-owns-this-id');
        } else if (!key.startsWith('note')) {
          // Connection ids: 22 chars of base64url.
          expect(value).toMatch(/^[A-Za-z0-9_-]{22}$/);
        }
        // Every id agrees with the merged dictionary the other tests substitute with.
        if (typeof value === 'string' && !key.startsWith('note')) expect(ids.get(key)).toBe(value);
      }
      used.add(line as number);
    },
  );
});

/** The invocation id carried by a client-result invocation line. */
function invocationIdOf(entry: GoldenLine): string | undefined {
  const message = entry.value as MessageLine;
  const channel = parserOf(message.scenario).parse(message.channel);
  if (channel === undefined || channel.kind.startsWith('internal:')) return undefined;
  return decodeRedisInvocation(Buffer.from(message.hex, 'hex')).invocationId;
}

describe('golden: coverage', () => {
  it('uses every line of the file', () => {
    const unused = golden.filter((entry) => !used.has(entry.line)).map((entry) => `${entry.line} (${entry.kind})`);
    expect(unused).toEqual([]);
    expect(used.size).toBe(golden.length);
    expect(golden).toHaveLength(104);
    expect(golden.filter((e) => e.kind === 'message')).toHaveLength(49);
  });
});
