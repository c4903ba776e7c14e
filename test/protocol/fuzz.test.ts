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
import { CORPUS, chunks, generator, mutate } from '../support/mutations';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2026);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 4000);

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
      return (
        typeof message.invocationId === 'string' && (message.error === undefined || typeof message.error === 'string')
      );
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
function expectProtocolError(
  error: unknown,
  expected: typeof HubProtocolError | typeof RedisProtocolError,
  context: string,
): void {
  if (!(error instanceof expected))
    throw new Error(`${context}: unexpected ${String((error as Error)?.stack ?? error)}`);
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
      const valid = Buffer.concat(
        Array.from({ length: count }, () => protocol.writeMessage(CORPUS[Math.floor(random() * CORPUS.length)])),
      );
      const input = mutate(valid, random);
      const reader = protocol.createReader({ maximumMessageSize: 32 * 1024 });
      try {
        for (const chunk of chunks(input, random)) {
          reader.push(chunk, (message) => {
            if (!wellFormed(message))
              throw new Error(`seed ${SEED} iteration ${i}: malformed ${JSON.stringify(message)}`);
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
  const valid = [
    Buffer.from('{"protocol":"json","version":1}\u001e'),
    Buffer.from('{"version":2,"protocol":"messagepack"}\u001e'),
  ];
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
          [
            'messagepack',
            Buffer.from([0x0c, 0x96, 0x01, 0x80, 0xc0, 0xa4, 0x53, 0x65, 0x6e, 0x64, 0x91, 0xa1, 0x78, 0x90]),
          ],
        ]),
        invocationId: '5',
        returnChannel: 'hub:internal:return:server-A',
      }),
      decodeRedisInvocation,
    ],
    [
      'group command',
      encodeRedisGroupCommand({ id: 3, serverName: 'server-A', action: 1, groupName: 'room', connectionId: 'conn' }),
      decodeRedisGroupCommand,
    ],
    ['ack', encodeRedisAck(7), decodeRedisAck],
    [
      'completion',
      encodeRedisCompletion({
        protocolName: 'json',
        completion: Buffer.from('{"type":3,"invocationId":"5","result":1}\u001e'),
      }),
      decodeRedisCompletion,
    ],
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
        expectProtocolError(
          error,
          RedisProtocolError,
          `${kind}: seed ${SEED} iteration ${i}, input ${input.toString('hex')}`,
        );
      }
    }
    expect(decoded).toBeGreaterThan(0);
  }
});
