/**
 * Mutation fuzzing of every parser that reads bytes from the network: the JSON and MessagePack hub protocol
 * readers, the handshake reader and the Redis backplane payload decoders. Valid messages are serialized, then
 * corrupted (bits flipped, bytes set to format boundaries, truncated, duplicated, spliced, padded) and fed in random
 * chunks. Whatever the bytes, a parser either yields well-formed messages or throws its documented protocol error —
 * never a `TypeError` or any other sign of a bug, never an endless loop.
 *
 * The generator is seeded, so a failure names a seed and an iteration that reproduce it. A longer hunt:
 * `FUZZ_ITERATIONS=200000 FUZZ_SEED=7 npx jest test/protocol/fuzz.test.ts`.
 */
import {
  HandshakeReader,
  HubProtocolError,
  JsonHubProtocol,
  MessagePackHubProtocol,
  MessageType,
  decodeRedisAck,
  decodeRedisCompletion,
  decodeRedisGroupCommand,
  decodeRedisInvocation,
  encodeRedisAck,
  encodeRedisCompletion,
  encodeRedisGroupCommand,
  encodeRedisInvocation,
  parseHandshakeRequest,
  RedisProtocolError,
  type HubMessage,
  type HubProtocol,
} from '../../protocol';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2026);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 4000);

/** mulberry32: a small, fast, seedable generator (uniform in [0, 1)). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that sit on format boundaries: record separators, MessagePack type codes, VarInt continuation bits. */
const BOUNDARY_BYTES = [0x00, 0x01, 0x1e, 0x22, 0x7b, 0x7d, 0x7f, 0x80, 0x90, 0x91, 0x9f, 0xa0, 0xc0, 0xc1, 0xc4, 0xc7, 0xcc, 0xcf, 0xd3, 0xd4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff];

/** One to four corruptions of `input`. */
function mutate(input: Buffer, random: () => number): Buffer {
  let bytes = Buffer.from(input);
  const pick = (n: number) => Math.floor(random() * n);
  for (let round = 1 + pick(4); round > 0; round--) {
    if (bytes.length === 0) return Buffer.from([BOUNDARY_BYTES[pick(BOUNDARY_BYTES.length)]]);
    const at = pick(bytes.length);
    switch (pick(7)) {
      case 0: // flip a bit
        bytes[at] ^= 1 << pick(8);
        break;
      case 1: // a boundary byte
        bytes[at] = BOUNDARY_BYTES[pick(BOUNDARY_BYTES.length)];
        break;
      case 2: // truncate
        bytes = bytes.subarray(0, at);
        break;
      case 3: {
        // repeat a slice
        const end = Math.min(bytes.length, at + 1 + pick(16));
        bytes = Buffer.concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
        break;
      }
      case 4: {
        // insert random bytes
        const noise = Buffer.from(Array.from({ length: 1 + pick(8) }, () => pick(256)));
        bytes = Buffer.concat([bytes.subarray(0, at), noise, bytes.subarray(at)]);
        break;
      }
      case 5: // remove a slice
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + pick(8)))]);
        break;
      default: // a large length where a small one was
        bytes[at] = 0xff;
        if (at + 1 < bytes.length) bytes[at + 1] = 0xff;
    }
  }
  return bytes;
}

/** Splits `bytes` into one to five chunks at random places. */
function chunks(bytes: Buffer, random: () => number): Buffer[] {
  const cuts = Array.from({ length: Math.floor(random() * 5) }, () => Math.floor(random() * (bytes.length + 1))).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(start, cut));
    start = cut;
  }
  return out;
}

/** Valid messages of every type, with the payload kinds each protocol carries. */
const CORPUS: HubMessage[] = [
  { type: MessageType.Invocation, invocationId: '1', target: 'SendMessage', arguments: ['alice', 'hello ✓'] },
  { type: MessageType.Invocation, target: 'Fire', arguments: [1, -2, 3.5, true, null, { nested: [1, { deeper: 'x' }] }] },
  { type: MessageType.Invocation, invocationId: '7', target: 'Upload', arguments: [], streamIds: ['0', '1'], headers: { traceparent: '00-ab-cd-01' } },
  { type: MessageType.StreamInvocation, invocationId: '2', target: 'Counter', arguments: [10, 5] },
  { type: MessageType.StreamItem, invocationId: '2', item: { value: 42 } },
  { type: MessageType.Completion, invocationId: '1', result: 'done' },
  { type: MessageType.Completion, invocationId: '3', error: 'failed' },
  { type: MessageType.Completion, invocationId: '4' },
  { type: MessageType.CancelInvocation, invocationId: '2' },
  { type: MessageType.Ping },
  { type: MessageType.Close, error: 'bye', allowReconnect: true },
  { type: MessageType.Ack, sequenceId: 12 },
  { type: MessageType.Sequence, sequenceId: 3 },
];

/** Whether `message` has the shape its type promises, as the hub connection relies on. */
function wellFormed(message: HubMessage): boolean {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return typeof message.target === 'string' && Array.isArray(message.arguments);
    case MessageType.StreamItem:
    case MessageType.CancelInvocation:
      return typeof message.invocationId === 'string';
    case MessageType.Completion:
      return typeof message.invocationId === 'string' && (message.error === undefined || typeof message.error === 'string');
    case MessageType.Ping:
      return true;
    case MessageType.Close:
      return message.error === undefined || typeof message.error === 'string';
    case MessageType.Ack:
    case MessageType.Sequence:
      return Number.isInteger(message.sequenceId);
    default:
      return false;
  }
}

/**
 * The one error a parser may throw for bad input: the protocol's own (`HubProtocolError` for the hub protocols and
 * the handshake, `RedisProtocolError` for backplane payloads — both .NET's `InvalidDataException`).
 */
function expectProtocolError(error: unknown, expected: typeof HubProtocolError | typeof RedisProtocolError, context: string): void {
  if (!(error instanceof expected)) throw new Error(`${context}: unexpected ${String((error as Error)?.stack ?? error)}`);
}

describe.each([
  ['JSON', new JsonHubProtocol()],
  ['MessagePack', new MessagePackHubProtocol()],
] as [string, HubProtocol][])('the %s hub protocol reader', (name, protocol) => {
  test(`yields well-formed messages or throws a protocol error, for ${ITERATIONS} corrupted inputs`, () => {
    const random = generator(SEED + name.length);
    let parsed = 0;
    let refused = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const count = 1 + Math.floor(random() * 3);
      const valid = Buffer.concat(Array.from({ length: count }, () => protocol.writeMessage(CORPUS[Math.floor(random() * CORPUS.length)])));
      const input = mutate(valid, random);
      const reader = protocol.createReader({ maximumMessageSize: 32 * 1024 });
      try {
        for (const chunk of chunks(input, random)) {
          reader.push(chunk, (message) => {
            if (!wellFormed(message)) throw new Error(`seed ${SEED} iteration ${i}: malformed ${JSON.stringify(message)}`);
            parsed++;
          });
        }
      } catch (error) {
        if (error instanceof Error && error.message.includes('malformed')) throw error;
        expectProtocolError(error, HubProtocolError, `seed ${SEED} iteration ${i}, input ${input.toString('hex')}`);
        refused++;
      }
    }
    // Both outcomes are exercised: corrupted inputs that still parse, and ones that are refused.
    expect(parsed).toBeGreaterThan(ITERATIONS / 10);
    expect(refused).toBeGreaterThan(ITERATIONS / 10);
  });

  test('the uncorrupted corpus reads back as written, whatever the chunking', () => {
    const random = generator(SEED);
    const bytes = Buffer.concat(CORPUS.map((message) => protocol.writeMessage(message)));
    for (let i = 0; i < 200; i++) {
      const out: HubMessage[] = [];
      const reader = protocol.createReader({ maximumMessageSize: null });
      for (const chunk of chunks(bytes, random)) reader.push(chunk, (message) => out.push(message));
      expect(out.map((message) => message.type)).toEqual(CORPUS.map((message) => message.type));
    }
  });
});

test(`the handshake reader and parser refuse ${ITERATIONS} corrupted handshakes with a protocol error or read them`, () => {
  const random = generator(SEED + 1);
  const valid = [Buffer.from('{"protocol":"json","version":1}\u001e'), Buffer.from('{"version":2,"protocol":"messagepack"}\u001e')];
  let read = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(valid[Math.floor(random() * valid.length)], random);
    const reader = new HandshakeReader(32 * 1024);
    try {
      for (const chunk of chunks(input, random)) {
        const record = reader.push(chunk);
        if (record !== null) {
          const request = parseHandshakeRequest(record.record);
          expect(typeof request.protocol).toBe('string');
          expect(Number.isInteger(request.version)).toBe(true);
          read++;
          break;
        }
      }
    } catch (error) {
      expectProtocolError(error, HubProtocolError, `seed ${SEED} iteration ${i}, input ${input.toString('hex')}`);
    }
  }
  expect(read).toBeGreaterThan(0);
});

test(`the Redis backplane decoders refuse ${ITERATIONS} corrupted payloads of each kind with a protocol error or decode them`, () => {
  const random = generator(SEED + 2);
  const payloads: Array<[string, Buffer, (data: Uint8Array) => unknown]> = [
    [
      'invocation',
      encodeRedisInvocation({
        excludedConnectionIds: ['a1', 'b2'],
        messages: new Map([
          ['json', Buffer.from('{"type":1,"target":"Send","arguments":["x"]}\u001e')],
          ['messagepack', Buffer.from([0x0c, 0x96, 0x01, 0x80, 0xc0, 0xa4, 0x53, 0x65, 0x6e, 0x64, 0x91, 0xa1, 0x78, 0x90])],
        ]),
        invocationId: '5',
        returnChannel: 'hub:internal:return:server-A',
      }),
      decodeRedisInvocation,
    ],
    ['group command', encodeRedisGroupCommand({ id: 3, serverName: 'server-A', action: 1, groupName: 'room', connectionId: 'conn' }), decodeRedisGroupCommand],
    ['ack', encodeRedisAck(7), decodeRedisAck],
    ['completion', encodeRedisCompletion({ protocolName: 'json', completion: Buffer.from('{"type":3,"invocationId":"5","result":1}\u001e') }), decodeRedisCompletion],
  ];
  for (const [kind, valid, decode] of payloads) {
    expect(() => decode(valid)).not.toThrow();
    let decoded = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(valid, random);
      try {
        decode(input);
        decoded++;
      } catch (error) {
        expectProtocolError(error, RedisProtocolError, `${kind}: seed ${SEED} iteration ${i}, input ${input.toString('hex')}`);
      }
    }
    expect(decoded).toBeGreaterThan(0);
  }
});
