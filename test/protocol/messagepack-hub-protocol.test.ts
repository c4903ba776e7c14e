/**
 * The MessagePack hub protocol against golden bytes (docs/protocol.md §2.5, docs/stack.md §2.3 and the baselines of
 * .NET's `src/SignalR/common/SignalR.Common/test/Internal/Protocol/MessagePackHubProtocolTestBase.cs`) and against the
 * official TypeScript client's codec (`@microsoft/signalr-protocol-msgpack`).
 */
import { isDeepStrictEqual } from 'node:util';
import { NullLogger, type HubMessage as ClientHubMessage } from '@microsoft/signalr';
import { MessagePackHubProtocol as ClientMessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import {
  HubProtocolError,
  MESSAGE_OVER_2GB,
  MessagePackHubProtocol,
  MessageType,
  frameBinaryMessage,
  maximumMessageSizeExceeded,
  messagePackHubProtocol,
  parseMessagePackMessage,
  type HubMessage,
  type HubMessageReader,
} from '../../protocol';

const hex = (bytes: Uint8Array | ArrayBuffer): string => Buffer.from(bytes as Uint8Array).toString('hex');
const fromHex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
/** Frames a body given in hex with its VarInt prefix. */
const frame = (body: string): Buffer => frameBinaryMessage(fromHex(body));

const protocol = messagePackHubProtocol;
const reader = (maximumMessageSize: number | null = null): HubMessageReader =>
  protocol.createReader({ maximumMessageSize });
/** Feeds each chunk to `target` in turn and collects the messages it hands on. */
const readChunks = (target: HubMessageReader, ...chunks: Uint8Array[]): HubMessage[] => {
  const messages: HubMessage[] = [];
  for (const chunk of chunks) target.push(chunk, (message) => messages.push(message));
  return messages;
};
const readAll = (bytes: Uint8Array): HubMessage[] => readChunks(reader(), bytes);

/**
 * `value` with every Uint8Array replaced by its hex, so that large binaries compare fast (jest's deep equality
 * walks a typed array element by element).
 */
function comparable(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bin: hex(value) };
  if (typeof value === 'bigint') return { bigint: String(value) };
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
  }
  return value;
}

/** The message of the error `fn` throws (exact comparison, unlike `toThrow(string)`). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HubProtocolError);
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

/** MessagePackHubProtocolTestBase.TestHeaders. */
const TEST_HEADERS = {
  Foo: 'Bar',
  'KeyWith\nNew\r\nLines': 'Still Works',
  ValueWithNewLines: 'Also\nWorks\r\nFine',
};
const TEST_HEADERS_HEX =
  '83a3466f6fa3426172b24b6579576974680a4e65770d0a4c696e6573ab5374696c6c20576f726b73b156616c7565576974684e65774c696e6573b0416c736f0a576f726b730d0a46696e65';

interface Golden {
  readonly name: string;
  readonly message: HubMessage;
  /** The body (without length prefix) .NET writes for `message`, hex. */
  readonly body: string;
}

/**
 * Both directions: our writer produces exactly `body` (framed) for `message`, our reader reads it back. Entries
 * marked "(.NET test)" are the baselines of MessagePackHubProtocolTestBase.cs; the others follow the layouts of
 * docs/protocol.md §2.5 (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0
 * L425-L610).
 */
const GOLDEN: readonly Golden[] = [
  // Invocation: always 6 items, nil id when there is none, streamIds [] when there are none.
  {
    name: 'InvocationWithNoHeadersAndNoArgs (.NET test)',
    message: { type: 1, invocationId: 'xyz', target: 'method', arguments: [] },
    body: '960180a378797aa66d6574686f649090',
  },
  {
    name: 'InvocationWithNoHeadersNoIdAndNoArgs (.NET test)',
    message: { type: 1, target: 'method', arguments: [] },
    body: '960180c0a66d6574686f649090',
  },
  {
    name: 'InvocationWithNoHeadersNoIdAndSingleIntArg (.NET test)',
    message: { type: 1, target: 'method', arguments: [42] },
    body: '960180c0a66d6574686f64912a90',
  },
  {
    name: 'InvocationWithNoHeadersNoIdIntAndStringArgs (.NET test)',
    message: { type: 1, target: 'method', arguments: [42, 'string'] },
    body: '960180c0a66d6574686f64922aa6737472696e6790',
  },
  {
    name: 'InvocationWithStreamArgument (.NET test)',
    message: { type: 1, target: 'Target', arguments: [], streamIds: ['__test_id__'] },
    body: '960180c0a65461726765749091ab5f5f746573745f69645f5f',
  },
  {
    name: 'InvocationWithStreamAndNormalArgument (.NET test)',
    message: { type: 1, target: 'Target', arguments: [42], streamIds: ['__test_id__'] },
    body: '960180c0a6546172676574912a91ab5f5f746573745f69645f5f',
  },
  {
    name: 'InvocationWithMultipleStreams (.NET test)',
    message: { type: 1, target: 'Target', arguments: [], streamIds: ['__test_id__', '__test_id2__'] },
    body: '960180c0a65461726765749092ab5f5f746573745f69645f5fac5f5f746573745f6964325f5f',
  },
  {
    name: 'Send("hi") (docs/protocol.md §2.5)',
    message: { type: 1, target: 'Send', arguments: ['hi'] },
    body: '960180c0a453656e6491a2686990',
  },
  {
    name: 'Invocation with headers, id and an object argument',
    message: {
      type: 1,
      headers: { a: 'b' },
      invocationId: '7',
      target: 'Echo',
      arguments: [{ a: 1, b: [1, 2, 3] }, null, -1],
    },
    body: '960181a161a162a137a44563686f9382a16101a16293010203c0ff90',
  },
  {
    name: 'Invocation with binary, date and bigint arguments',
    message: { type: 1, target: 'T', arguments: [new Uint8Array([1, 2]), new Date(0), 2n ** 60n, 5000000000, 3.5] },
    body: '960180c0a15495c4020102d6ff00000000cf1000000000000000cf000000012a05f200cb400c00000000000090',
  },

  // StreamInvocation.
  {
    name: 'StreamInvocationWithNoHeadersAndNoArgs (.NET test)',
    message: { type: 4, invocationId: 'xyz', target: 'method', arguments: [] },
    body: '960480a378797aa66d6574686f649090',
  },
  {
    name: 'StreamInvocationWithNoHeadersAndIntArg (.NET test)',
    message: { type: 4, invocationId: 'xyz', target: 'method', arguments: [42] },
    body: '960480a378797aa66d6574686f64912a90',
  },
  {
    name: 'StreamInvocationWithStreamArgument (.NET test)',
    message: { type: 4, invocationId: 'xyz', target: 'method', arguments: [], streamIds: ['__test_id__'] },
    body: '960480a378797aa66d6574686f649091ab5f5f746573745f69645f5f',
  },
  {
    name: 'StreamInvocationWithStreamAndNormalArgument (.NET test)',
    message: { type: 4, invocationId: 'xyz', target: 'method', arguments: [42], streamIds: ['__test_id__'] },
    body: '960480a378797aa66d6574686f64912a91ab5f5f746573745f69645f5f',
  },
  {
    name: 'StreamInvocationWithNoHeadersAndIntAndStringArgs (.NET test)',
    message: { type: 4, invocationId: 'xyz', target: 'method', arguments: [42, 'string'] },
    body: '960480a378797aa66d6574686f64922aa6737472696e6790',
  },

  // StreamItem.
  {
    name: 'StreamItemWithNoHeadersAndIntItem (.NET test)',
    message: { type: 2, invocationId: 'xyz', item: 42 },
    body: '940280a378797a2a',
  },
  {
    name: 'StreamItemWithNoHeadersAndStringItem (.NET test)',
    message: { type: 2, invocationId: 'xyz', item: 'string' },
    body: '940280a378797aa6737472696e67',
  },
  {
    name: 'StreamItemWithNoHeadersAndBoolItem (.NET test)',
    message: { type: 2, invocationId: 'xyz', item: true },
    body: '940280a378797ac3',
  },
  {
    name: 'StreamItem with a null item',
    message: { type: 2, invocationId: 'xyz', item: null },
    body: '940280a378797ac0',
  },
  {
    name: 'StreamItem with headers',
    message: { type: 2, headers: TEST_HEADERS, invocationId: 'xyz', item: 1 },
    body: `9402${TEST_HEADERS_HEX}a378797a01`,
  },

  // Completion: result kind 1 error, 2 void, 3 result.
  {
    name: 'CompletionWithNoHeadersAndError (.NET test)',
    message: { type: 3, invocationId: 'xyz', error: 'Error not found!' },
    body: '950380a378797a01b04572726f72206e6f7420666f756e6421',
  },
  {
    name: 'CompletionWithHeadersAndError (.NET test)',
    message: { type: 3, headers: TEST_HEADERS, invocationId: 'xyz', error: 'Error not found!' },
    body: `9503${TEST_HEADERS_HEX}a378797a01b04572726f72206e6f7420666f756e6421`,
  },
  {
    name: 'CompletionWithNoHeadersAndNoResult (.NET test)',
    message: { type: 3, invocationId: 'xyz' },
    body: '940380a378797a02',
  },
  {
    name: 'CompletionWithHeadersAndNoResult (.NET test)',
    message: { type: 3, headers: TEST_HEADERS, invocationId: 'xyz' },
    body: `9403${TEST_HEADERS_HEX}a378797a02`,
  },
  {
    name: 'CompletionWithNoHeadersAndIntResult (.NET test)',
    message: { type: 3, invocationId: 'xyz', result: 42 },
    body: '950380a378797a032a',
  },
  {
    name: 'CompletionWithNoHeadersAndStringResult (.NET test)',
    message: { type: 3, invocationId: 'xyz', result: 'string' },
    body: '950380a378797a03a6737472696e67',
  },
  {
    name: 'CompletionWithNoHeadersAndBooleanResult (.NET test)',
    message: { type: 3, invocationId: 'xyz', result: true },
    body: '950380a378797a03c3',
  },
  {
    name: 'Completion with a null result (a void hub method)',
    message: { type: 3, invocationId: 'xyz', result: null },
    body: '950380a378797a03c0',
  },
  {
    name: 'Completion with a map result',
    message: { type: 3, invocationId: '0', result: { a: 1, b: [1, 2, 3] } },
    body: '950380a1300382a16101a16293010203',
  },

  // CancelInvocation.
  {
    name: 'CancelInvocationWithNoHeaders (.NET test)',
    message: { type: 5, invocationId: 'xyz' },
    body: '930580a378797a',
  },
  {
    name: 'CancelInvocationWithHeaders (.NET test)',
    message: { type: 5, headers: TEST_HEADERS, invocationId: 'xyz' },
    body: `9305${TEST_HEADERS_HEX}a378797a`,
  },

  // Ping, Close (always 3 items from .NET), Ack, Sequence.
  { name: 'Ping (.NET test)', message: { type: 6 }, body: '9106' },
  { name: 'CloseMessage (.NET test)', message: { type: 7 }, body: '9307c0c2' },
  { name: 'CloseMessage_HasError (.NET test)', message: { type: 7, error: 'Error!' }, body: '9307a64572726f7221c2' },
  { name: 'CloseMessage_HasAllowReconnect (.NET test)', message: { type: 7, allowReconnect: true }, body: '9307c0c3' },
  {
    name: 'CloseMessage_HasErrorAndAllowReconnect (.NET test)',
    message: { type: 7, error: 'Error!', allowReconnect: true },
    body: '9307a64572726f7221c3',
  },
  { name: 'Ack', message: { type: 8, sequenceId: 1 }, body: '920801' },
  { name: 'Ack with a 16-bit id', message: { type: 8, sequenceId: 300 }, body: '9208cd012c' },
  { name: 'Sequence', message: { type: 9, sequenceId: 1 }, body: '920901' },
  { name: 'Sequence with a 64-bit id', message: { type: 9, sequenceId: 5000000000 }, body: '9209cf000000012a05f200' },
];

/** docs/protocol.md §2.5 byte examples, framed. */
const SPEC_FRAMES: readonly [string, HubMessage, string][] = [
  ['Ping', { type: 6 }, '02 91 06'],
  ['.NET Close, no error', { type: 7 }, '04 93 07 C0 C2'],
  [
    '.NET server→client Invocation Send("hi"), no id',
    { type: 1, target: 'Send', arguments: ['hi'] },
    '0E 96 01 80 C0 A4 53 65 6E 64 91 A2 68 69 90',
  ],
];

/**
 * Read-only: bytes other writers produce that our writer writes in .NET's form instead — the official TS client
 * (docs/stack.md §2.3: 5-item Invocations, 2-item Close), .NET `float` values, extra items, empty ids.
 */
const READ_ONLY: readonly [string, string, HubMessage][] = [
  ['client Ping (docs/stack.md §2.3)', '02 91 06', { type: 6 }],
  [
    'client Invocation Echo("hi") (docs/stack.md §2.3)',
    '0e 95 01 80 a1 30 a4 45 63 68 6f 91 a2 68 69',
    { type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] },
  ],
  [
    'client Invocation with an object (docs/stack.md §2.3)',
    '15 95 01 80 a1 31 a4 4563686f 91 82 a1 61 01 a1 62 93 01 02 03',
    { type: 1, invocationId: '1', target: 'Echo', arguments: [{ a: 1, b: [1, 2, 3] }] },
  ],
  ['client Close (docs/protocol.md §2.5, docs/stack.md §2.3)', '03 92 07 c0', { type: 7 }],
  [
    'StreamItemWithNoHeadersAndFloatItem (.NET test)',
    frame('940280a378797aca42280000').toString('hex'),
    { type: 2, invocationId: 'xyz', item: 42 },
  ],
  [
    'CompletionWithNoHeadersAndFloatResult (.NET test)',
    frame('950380a378797a03ca42280000').toString('hex'),
    { type: 3, invocationId: 'xyz', result: 42 },
  ],
  [
    'ParseMessageWithExtraData (.NET test)',
    frame('980180a378797aa66d6574686f649090c3a26578').toString('hex'),
    { type: 1, invocationId: 'xyz', target: 'method', arguments: [] },
  ],
  [
    'Invocation with an empty id (non-blocking)',
    frame('960180a0a16d9090').toString('hex'),
    { type: 1, target: 'm', arguments: [] },
  ],
  [
    'Invocation with an empty streamIds list',
    frame('960180c0a16d9090').toString('hex'),
    { type: 1, target: 'm', arguments: [] },
  ],
  ['Completion, error kind with a nil error', frame('950380a13101c0').toString('hex'), { type: 3, invocationId: '1' }],
  ['Close with an empty error (still an error)', frame('9307a0c2').toString('hex'), { type: 7, error: '' }],
  ['Close, 3 items, allowReconnect false', frame('9307a178c2').toString('hex'), { type: 7, error: 'x' }],
  ['Ping with an extra item', frame('9206c0').toString('hex'), { type: 6 }],
  [
    'Ack with a uint32 id written in 64 bits',
    frame('9208cf0000000000000005').toString('hex'),
    { type: 8, sequenceId: 5 },
  ],
  [
    'headers in a map 16',
    frame('9305de0001a161a162a131').toString('hex'),
    { type: 5, headers: { a: 'b' }, invocationId: '1' },
  ],
];

describe('MessagePackHubProtocol', () => {
  it('is the messagepack protocol, version 2, binary', () => {
    expect(protocol).toBeInstanceOf(MessagePackHubProtocol);
    expect(protocol.name).toBe('messagepack');
    expect(protocol.version).toBe(2);
    expect(protocol.transferFormat).toBe('Binary');
    expect([0, 1, 2, 3].map((v) => protocol.isVersionSupported(v))).toEqual([true, true, true, false]);
  });

  describe('golden bytes, both directions', () => {
    it.each(GOLDEN.map((g) => [g.name, g] as const))('%s', (_name, { message, body }) => {
      const framed = frame(body);
      expect(hex(protocol.writeMessage(message))).toBe(hex(framed));
      expect(readAll(framed)).toEqual([message]);
    });

    it.each(SPEC_FRAMES)('docs/protocol.md §2.5: %s', (_name, message, bytes) => {
      expect(hex(protocol.writeMessage(message))).toBe(bytes.replace(/\s+/g, '').toLowerCase());
      expect(readAll(fromHex(bytes))).toEqual([message]);
    });

    it('uses a 2-byte prefix past 127 bytes of body', () => {
      const message: HubMessage = { type: 1, target: 'Send', arguments: ['x'.repeat(200)] };
      const bytes = protocol.writeMessage(message);
      // A 213-byte body: 213 = 0b1_1010101 → d5 01.
      expect(hex(bytes.subarray(0, 2))).toBe('d501');
      expect(bytes.length).toBe(215);
      expect(readAll(bytes)).toEqual([message]);
    });
  });

  it('round-trips every kind of value as arguments, item and result', () => {
    const values: unknown[] = [
      'text',
      '',
      'ü€😀',
      0,
      127,
      -1,
      -33,
      65535,
      65536,
      0xffffffff,
      5000000000,
      -5000000000,
      3.5,
      -0.25,
      true,
      false,
      null,
      { nested: { list: [1, [2, [3]]], empty: {} } },
      [],
      new Uint8Array([0, 255]),
      new Date(Date.UTC(2000, 1, 29, 12)),
      new Date(1234567890123),
      2n ** 53n + 1n,
      -(2n ** 62n),
      2n ** 64n - 1n,
    ];
    const messages: HubMessage[] = [
      { type: 1, invocationId: '1', target: 'All', arguments: values },
      { type: 2, invocationId: '1', item: values },
      { type: 3, invocationId: '1', result: { values } },
    ];
    for (const message of messages) expect(readAll(protocol.writeMessage(message))).toEqual([message]);
  });

  describe('reading what other writers produce', () => {
    it.each(READ_ONLY)('%s', (_name, bytes, message) => {
      expect(readAll(fromHex(bytes))).toEqual([message]);
    });
  });

  describe('writer details', () => {
    it('writes the framed sizes .NET asserts (MessagePackHubProtocolTestBase VerifyMessageSize)', () => {
      const sizes: [HubMessage, number][] = [
        [{ type: 1, target: 'Target', arguments: [1] }, 15],
        [{ type: 1, invocationId: '1', target: 'Target', arguments: [1] }, 16],
        [{ type: 1, invocationId: '1', target: 'Target', arguments: [1], streamIds: ['2'] }, 18],
        [{ type: 7 }, 5],
        [{ type: 7, error: 'error' }, 10],
        [{ type: 2, invocationId: '1', item: null }, 7],
        [{ type: 2, invocationId: '1', item: 1 }, 7],
        [{ type: 3, invocationId: '1' }, 7],
        [{ type: 3, invocationId: '1', result: 1 }, 8],
        [{ type: 3, invocationId: '1', error: 'error' }, 13],
        [{ type: 4, invocationId: '1', target: 'target', arguments: [] }, 15],
        [{ type: 4, invocationId: '1', target: 'target', arguments: [], streamIds: ['2'] }, 17],
        [{ type: 5, invocationId: '1' }, 6],
        [{ type: 6 }, 3],
      ];
      for (const [message, size] of sizes) expect(protocol.writeMessage(message).length).toBe(size);
    });

    it('writes an empty Invocation id and an empty Close error as nil, other empty ids as strings, as .NET does', () => {
      expect(hex(protocol.writeMessage({ type: 1, invocationId: '', target: 'm', arguments: [] }))).toBe(
        '08960180c0a16d9090',
      );
      expect(hex(protocol.writeMessage({ type: 7, error: '' }))).toBe('049307c0c2');
      expect(hex(protocol.writeMessage({ type: 4, invocationId: '', target: 'm', arguments: [] }))).toBe(
        '08960480a0a16d9090',
      );
      expect(hex(protocol.writeMessage({ type: 2, invocationId: '', item: 1 }))).toBe('05940280a001');
      expect(hex(protocol.writeMessage({ type: 3, invocationId: '', error: '' }))).toBe('06950380a001a0');
      expect(hex(protocol.writeMessage({ type: 5, invocationId: '' }))).toBe('04930580a0');
    });

    it('writes an empty stream id list as []', () => {
      expect(hex(protocol.writeMessage({ type: 1, target: 'm', arguments: [], streamIds: [] }))).toBe(
        '08960180c0a16d9090',
      );
    });

    it('writes headers in insertion order, an empty header object as 80', () => {
      expect(hex(protocol.writeMessage({ type: 5, headers: { z: '1', a: '2' }, invocationId: 'i' }))).toBe(
        '0d930582a17aa131a161a132a169',
      );
      expect(hex(protocol.writeMessage({ type: 5, headers: {}, invocationId: 'i' }))).toBe('05930580a169');
    });

    it('writes an error Completion when error is set, even with a result', () => {
      const message = { type: 3, invocationId: 'i', error: 'bad', result: 1 } as HubMessage;
      expect(hex(protocol.writeMessage(message))).toBe('0a950380a16901a3626164');
    });

    it('returns an independent buffer per message', () => {
      const first = protocol.writeMessage({ type: 6 });
      const second = protocol.writeMessage({ type: 7 });
      expect(hex(first)).toBe('029106');
      expect(hex(second)).toBe('049307c0c2');
    });

    it('survives a payload getter that writes a message itself', () => {
      const payload = {
        get inner(): string {
          return hex(protocol.writeMessage({ type: 1, target: 'x'.repeat(40), arguments: [] }));
        },
      };
      const bytes = protocol.writeMessage({ type: 2, invocationId: '1', item: payload });
      const [read] = readAll(bytes) as unknown as [{ item: { inner: string } }];
      expect(read.item.inner).toBe(hex(protocol.writeMessage({ type: 1, target: 'x'.repeat(40), arguments: [] })));
    });

    it('writes a large message through a grown buffer', () => {
      const big = new Uint8Array(3_000_000).fill(5);
      const bytes = protocol.writeMessage({ type: 2, invocationId: '1', item: big });
      expect(hex(bytes.subarray(0, 4))).toBe('ca8db701');
      expect(comparable(readAll(bytes))).toEqual(comparable([{ type: 2, invocationId: '1', item: big }]));
      expect(hex(protocol.writeMessage({ type: 6 }))).toBe('029106');
    });
  });
});

describe('cross-check with the official client codec (@microsoft/signalr-protocol-msgpack)', () => {
  const client = new ClientMessagePackHubProtocol();
  const toArrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

  /**
   * The client's message shape in ours: it always has `headers` ({} when none) and `streamIds` ([] on
   * Invocations, which it ignores), `undefined`/`null` for absent fields, and `allowReconnect: false`.
   */
  function normalize(message: object): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(message)) {
      if (value === undefined) continue;
      if (value === null && key !== 'result' && key !== 'item') continue;
      if (key === 'headers' && Object.keys(value as object).length === 0) continue;
      if (key === 'streamIds') continue;
      if (key === 'allowReconnect' && value === false) continue;
      out[key] = value;
    }
    return out;
  }

  /** Messages a .NET server sends; the client parses types 1, 2, 3, 6, 7, 8, 9. */
  const serverMessages = GOLDEN.map((g) => g.message).filter(
    (m) =>
      m.type !== MessageType.StreamInvocation &&
      m.type !== MessageType.CancelInvocation &&
      // The client's decoder reads int64 as a lossy number.
      !JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? 'BIGINT' : v)).includes('BIGINT'),
  );

  it.each(
    serverMessages.map(
      (m) => [JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), m] as const,
    ),
  )('the client reads what we write: %s', (_name, message) => {
    const parsed = client.parseMessages(toArrayBuffer(protocol.writeMessage(message)), NullLogger.instance);
    expect(parsed).toHaveLength(1);
    expect(normalize(parsed[0])).toEqual(normalize(message));
  });

  it('the client skips the types only a server reads (StreamInvocation, CancelInvocation)', () => {
    const bytes = Buffer.concat([
      protocol.writeMessage({ type: 4, invocationId: '1', target: 't', arguments: [] }),
      protocol.writeMessage({ type: 5, invocationId: '1' }),
      protocol.writeMessage({ type: 6 }),
    ]);
    expect(client.parseMessages(toArrayBuffer(bytes), NullLogger.instance)).toEqual([{ type: 6 }]);
  });

  it('the client reads a stream of all our messages at once', () => {
    const bytes = Buffer.concat(serverMessages.map((m) => protocol.writeMessage(m)));
    const parsed = client.parseMessages(toArrayBuffer(bytes), NullLogger.instance);
    expect(parsed.map(normalize)).toEqual(serverMessages.map(normalize));
  });

  /** What a client sends, as the client's writer is given it, and what our reader must make of it. */
  const clientMessages: [string, object, HubMessage][] = [
    [
      'Invocation without id (5 items)',
      { type: 1, target: 'Send', arguments: ['hi', 1, null] },
      { type: 1, target: 'Send', arguments: ['hi', 1, null] },
    ],
    [
      'Invocation with id',
      { type: 1, invocationId: '0', target: 'Echo', arguments: [{ a: 1, b: [1, 2, 3] }] },
      { type: 1, invocationId: '0', target: 'Echo', arguments: [{ a: 1, b: [1, 2, 3] }] },
    ],
    [
      'Invocation with stream ids (6 items)',
      { type: 1, invocationId: '2', target: 'Upload', arguments: [], streamIds: ['3', '4'] },
      { type: 1, invocationId: '2', target: 'Upload', arguments: [], streamIds: ['3', '4'] },
    ],
    [
      'Invocation with headers and values',
      {
        type: 1,
        headers: { h: 'v' },
        invocationId: '5',
        target: 'T',
        arguments: [
          new Uint8Array([9, 8]),
          new Date(Date.UTC(2021, 5, 1, 0, 0, 0, 250)),
          -129,
          2 ** 40,
          0.1,
          '€',
          true,
        ],
      },
      {
        type: 1,
        headers: { h: 'v' },
        invocationId: '5',
        target: 'T',
        arguments: [
          new Uint8Array([9, 8]),
          new Date(Date.UTC(2021, 5, 1, 0, 0, 0, 250)),
          -129,
          2 ** 40,
          0.1,
          '€',
          true,
        ],
      },
    ],
    [
      'StreamInvocation',
      { type: 4, invocationId: '6', target: 'Counter', arguments: [10, 500] },
      { type: 4, invocationId: '6', target: 'Counter', arguments: [10, 500] },
    ],
    [
      'StreamInvocation with stream ids',
      { type: 4, invocationId: '6', target: 'Counter', arguments: [], streamIds: ['7'] },
      { type: 4, invocationId: '6', target: 'Counter', arguments: [], streamIds: ['7'] },
    ],
    ['StreamItem', { type: 2, invocationId: '7', item: { n: 1 } }, { type: 2, invocationId: '7', item: { n: 1 } }],
    [
      'Completion with a result (client result)',
      { type: 3, invocationId: '8', result: 'ok' },
      { type: 3, invocationId: '8', result: 'ok' },
    ],
    [
      'Completion with a null result',
      { type: 3, invocationId: '8', result: null },
      { type: 3, invocationId: '8', result: null },
    ],
    [
      'Completion with an error',
      { type: 3, invocationId: '8', error: 'failed' },
      { type: 3, invocationId: '8', error: 'failed' },
    ],
    ['Completion of a stream (void)', { type: 3, invocationId: '7' }, { type: 3, invocationId: '7' }],
    ['CancelInvocation', { type: 5, invocationId: '6' }, { type: 5, invocationId: '6' }],
    ['Ping', { type: 6 }, { type: 6 }],
    ['Close (the client always writes [7, nil])', { type: 7, error: 'ignored', allowReconnect: true }, { type: 7 }],
    ['Ack', { type: 8, sequenceId: 12 }, { type: 8, sequenceId: 12 }],
    ['Sequence', { type: 9, sequenceId: 70000 }, { type: 9, sequenceId: 70000 }],
  ];

  it.each(clientMessages)('we read what the client writes: %s', (_name, clientMessage, expected) => {
    const bytes = new Uint8Array(client.writeMessage(clientMessage as ClientHubMessage) as ArrayBuffer);
    expect(readAll(bytes)).toEqual([expected]);
  });

  it('we read the client writing 5-item Invocations and 2-item Closes', () => {
    const invocation = new Uint8Array(
      client.writeMessage({ type: 1, target: 'A', arguments: [] } as ClientHubMessage) as ArrayBuffer,
    );
    expect(hex(invocation)).toBe('07950180c0a14190');
    const close = new Uint8Array(client.writeMessage({ type: 7 } as ClientHubMessage) as ArrayBuffer);
    expect(hex(close)).toBe('039207c0');
  });
});

describe('chunking', () => {
  /** Golden streams: several messages concatenated, with what they read as. */
  const streams: [string, Buffer, HubMessage[]][] = [
    ['every golden message', Buffer.concat(GOLDEN.map((g) => frame(g.body))), GOLDEN.map((g) => g.message)],
    [
      'what the official client sent in docs/stack.md §2.3',
      fromHex('029106 0e950180a130a44563686f91a26869 15950180a131a44563686f9182a16101a16293010203 039207c0'),
      READ_ONLY.slice(0, 4).map(([, , m]) => m),
    ],
    [
      'large messages (2- and 3-byte prefixes) around an unknown type',
      Buffer.concat([
        protocol.writeMessage({ type: 2, invocationId: 'a', item: 'y'.repeat(300) }),
        frame('930a80a131'),
        protocol.writeMessage({ type: 2, invocationId: 'b', item: new Uint8Array(20000).fill(1) }),
        frame('9106'),
      ]),
      [
        { type: 2, invocationId: 'a', item: 'y'.repeat(300) },
        { type: 2, invocationId: 'b', item: new Uint8Array(20000).fill(1) },
        { type: 6 },
      ],
    ],
  ];

  it.each(streams)('%s: split at every byte offset', (_name, stream, expected) => {
    expect(comparable(readAll(stream))).toEqual(comparable(expected));
    for (let at = 0; at <= stream.length; at++) {
      const r = reader();
      const messages = readChunks(r, stream.subarray(0, at), stream.subarray(at));
      expect(r.bufferedBytes).toBe(0);
      // isDeepStrictEqual compares binaries natively; jest's toEqual, only used to show a difference, walks them
      // element by element, which 20 000 times over would dominate the run.
      if (!isDeepStrictEqual(messages, expected)) expect(comparable(messages)).toEqual(comparable(expected));
    }
  });

  it.each(streams)('%s: byte by byte', (_name, stream, expected) => {
    const r = reader();
    const messages: HubMessage[] = [];
    for (let i = 0; i < stream.length; i++) messages.push(...readChunks(r, stream.subarray(i, i + 1)));
    expect(comparable(messages)).toEqual(comparable(expected));
  });

  it('reports the bytes held back', () => {
    const r = reader();
    expect(readChunks(r, fromHex('03 9207'))).toEqual([]);
    expect(r.bufferedBytes).toBe(3);
    expect(readChunks(r, fromHex('c0 02'))).toEqual([{ type: 7 }]);
    expect(r.bufferedBytes).toBe(1);
  });

  it('does not keep views of a chunk the caller reuses once its messages are read', () => {
    const chunk = Buffer.from(protocol.writeMessage({ type: 2, invocationId: 'i', item: new Uint8Array([1, 2, 3]) }));
    const [message] = readChunks(reader(), chunk) as unknown as [{ item: Uint8Array }];
    chunk.fill(0);
    expect(Array.from(message.item)).toEqual([1, 2, 3]);
  });
});

describe('unknown message types', () => {
  it.each([
    ['10', '910a'],
    ['0', '9100'],
    ['-1', '91ff'],
    ['Int32.MaxValue with extra items', '93ce7fffffffa178c0'],
    ['100 with a payload', '9464a17880c3'],
  ])('type %s is skipped and the following messages are still read', (_name, body) => {
    const stream = Buffer.concat([frame('920801'), frame(body), frame('9106'), frame(body)]);
    expect(readAll(stream)).toEqual([{ type: 8, sequenceId: 1 }, { type: 6 }]);
    expect(parseMessagePackMessage(fromHex(body))).toBeNull();
  });
});

describe('invalid input, with the .NET texts', () => {
  const BINDING = 'Make sure that the types of the provided values match the types of the hub method being invoked.';
  /** [name, body hex, error]; "(.NET test)" rows are BaseInvalidPayloads / ArgumentBindingErrors of MessagePackHubProtocolTestBase.cs. */
  const INVALID: [string, string, string][] = [
    // The body itself.
    ['an empty body', '', 'Attempted to read past the end of the stream.'],
    ['a body that is not an array', '06', 'Unexpected msgpack code 6 (positive fixint) encountered.'],
    ['a map body', '81a474797065 01', 'Unexpected msgpack code 129 (fixmap) encountered.'],
    ['an empty array', '90', "Reading 'messageType' as Int32 failed."],
    ['an array longer than the body', '9601', 'Attempted to read past the end of the stream.'],
    ['MessageTypeString (.NET test)', '91a3666f6f', "Reading 'messageType' as Int32 failed."],
    ['a nil message type', '91c0', "Reading 'messageType' as Int32 failed."],
    ['a message type outside Int32', '91ce80000000', "Reading 'messageType' as Int32 failed."],

    // Headers.
    ['HeadersNotAMap (.NET test)', '9201a3666f6f', "Reading map length for 'headers' failed."],
    ['HeaderKeyInt (.NET test)', '9201822aa3666f6f', "Reading 'headers[0].Key' as String failed."],
    ['HeaderValueInt (.NET test)', '920182a3666f6f2a', "Reading 'headers[0].Value' as String failed."],
    ['HeaderKeyArray (.NET test)', '920184a3666f6fa3666f6f90a3666f6f', "Reading 'headers[1].Key' as String failed."],
    [
      'HeaderValueArray (.NET test)',
      '920184a3666f6fa3666f6fa3666f6f90',
      "Reading 'headers[1].Value' as String failed.",
    ],
    ['an empty header key', '930581a0a131a131', 'Null or empty key in header.'],
    ['a nil header value', '930581a131c0a131', 'Null or empty value in header.'],
    ['a duplicate header', '930582a161a162a161a163a131', 'An item with the same key has already been added. Key: a'],

    // Invocation.
    ['InvocationMissingId (.NET test)', '920180', "Reading 'invocationId' as String failed."],
    ['InvocationIdBoolean (.NET test)', '910180c2', "Reading 'invocationId' as String failed."],
    ['InvocationTargetMissing (.NET test)', '930180a3616263', "Reading 'target' as String failed."],
    ['InvocationTargetInt (.NET test)', '940180a36162632a', "Reading 'target' as String failed."],
    ['an Invocation of 3 items', '930180c0', "Reading 'target' as String failed."],
    ['a truncated target', '950180c0a66d65', "Reading 'target' as String failed."],
    ['an empty target', '950180c0a090', 'Null or empty target for Invocation message.'],
    ['a nil target', '950180c0c090', 'Null or empty target for Invocation message.'],
    [
      'InvocationArgumentArrayMissing (.NET test)',
      '940180a3616263a378797a',
      "Reading array length for 'arguments' failed.",
    ],
    [
      'InvocationArgumentArrayNotAnArray (.NET test)',
      '950180a3616263a378797a2a',
      "Reading array length for 'arguments' failed.",
    ],
    ['a truncated argument', '950180c0a16d91a36162', `Error binding argument 1. ${BINDING}`],
    ['a truncated second argument', '950180c0a16d9201cd01', `Error binding argument 2. ${BINDING}`],
    [
      'an argument nested deeper than 500 levels',
      `950180c0a16d91${'91'.repeat(501)}00`,
      `Error binding argument 1. ${BINDING}`,
    ],
    ['streamIds that are not an array', '960180c0a16d902a', "Reading array length for 'streamIds' failed."],
    [
      'a missing streamIds list in a 6-item Invocation',
      '960180c0a16d90',
      "Reading array length for 'streamIds' failed.",
    ],
    [
      'a stream id that is not a string',
      '960180c0a16d90912a',
      'Unexpected msgpack code 42 (positive fixint) encountered.',
    ],
    ['a nil stream id', '960180c0a16d9091c0', 'Null or empty value in streamIds received.'],

    // StreamInvocation.
    ['StreamInvocationMissingId (.NET test)', '920480', "Reading 'invocationId' as String failed."],
    ['StreamInvocationIdBoolean (.NET test)', '930480c2', "Reading 'invocationId' as String failed."],
    ['StreamInvocationTargetMissing (.NET test)', '930480a3616263', "Reading 'target' as String failed."],
    ['StreamInvocationTargetInt (.NET test)', '940480a36162632a', "Reading 'target' as String failed."],
    ['a StreamInvocation without id', '950480c0a16d90', 'Null or empty invocation ID for StreamInvocation message.'],
    ['a StreamInvocation with an empty target', '950480a131a090', 'Null or empty target for StreamInvocation message.'],
    [
      'StreamInvocationArgumentArrayMissing (.NET test)',
      '940480a3616263a378797a',
      "Reading array length for 'arguments' failed.",
    ],
    [
      'StreamInvocationArgumentArrayNotAnArray (.NET test)',
      '950480a3616263a378797a2a',
      "Reading array length for 'arguments' failed.",
    ],

    // StreamItem.
    ['StreamItemMissingId (.NET test)', '920280', "Reading 'invocationId' as String failed."],
    ['StreamItemInvocationIdBoolean (.NET test)', '930280c2', "Reading 'invocationId' as String failed."],
    ['a StreamItem with an empty id', '940280a001', 'Null or empty invocation ID for StreamItem message.'],
    ['a StreamItem without item', '930280a131', "Deserializing object of the `Object` type for 'item' failed."],

    // Completion.
    ['CompletionMissingId (.NET test)', '920380', "Reading 'invocationId' as String failed."],
    ['CompletionIdBoolean (.NET test)', '930380c2', "Reading 'invocationId' as String failed."],
    ['a Completion without id', '940380c002', 'Null or empty invocation ID for Completion message.'],
    ['a Completion of 3 items', '930380a131', "Reading 'resultKind' as Int32 failed."],
    ['CompletionResultKindString (.NET test)', '940380a378797aa378797a', "Reading 'resultKind' as Int32 failed."],
    ['CompletionResultKindOutOfRange (.NET test)', '940380a378797a2a', 'Invalid invocation result kind.'],
    ['result kind 0', '940380a378797a00', 'Invalid invocation result kind.'],
    ['CompletionErrorMissing (.NET test)', '940380a378797a01', "Reading 'error' as String failed."],
    ['CompletionErrorInt (.NET test)', '950380a378797a012a', "Reading 'error' as String failed."],
    [
      'a result kind 3 without result',
      '940380a378797a03',
      "Deserializing object of the `Object` type for 'argument' failed.",
    ],

    // CancelInvocation, Close, Ack, Sequence.
    ['a CancelInvocation without id', '930580c0', 'Null or empty invocation ID for CancelInvocation message.'],
    ['a CancelInvocation of 2 items', '920580', "Reading 'invocationId' as String failed."],
    ['a Close of 1 item', '9107', "Reading 'error' as String failed."],
    ['a Close error that is not a string', '92072a', "Reading 'error' as String failed."],
    ['an allowReconnect that is not a boolean', '9307c001', "Reading 'allowReconnect' as Boolean failed."],
    ['a 3-item Close with 2 items of body', '9307c0', 'Attempted to read past the end of the stream.'],
    ['a 3-item Close cut after the error', '9307a3616263', "Reading 'allowReconnect' as Boolean failed."],
    ['an Ack without id', '9108', "Reading 'sequenceId' as Int64 failed."],
    ['a Sequence with a string id', '9209a131', "Reading 'sequenceId' as Int64 failed."],
    ['a Sequence id over Int64', '9209cf8000000000000000', "Reading 'sequenceId' as Int64 failed."],
  ];

  it.each(INVALID)('%s', (_name, body, message) => {
    expect(errorOf(() => readAll(frame(body)))).toBe(message);
  });

  it('keeps the codec error as the cause', () => {
    try {
      readAll(frame('950180c0a16d91a36162'));
      throw new Error('expected an error');
    } catch (error) {
      expect((error as Error).name).toBe('InvalidDataException');
      expect(((error as Error).cause as Error).message).toBe('Attempted to read past the end of the stream.');
    }
  });

  it('fails on a prefix over 5 bytes or over 2 GB', () => {
    expect(errorOf(() => readAll(fromHex('808080808000')))).toBe(MESSAGE_OVER_2GB);
    expect(errorOf(() => readAll(fromHex('ffffffff08')))).toBe(MESSAGE_OVER_2GB);
    expect(errorOf(() => readAll(fromHex('029106 ffffffff0f')))).toBe(MESSAGE_OVER_2GB);
  });

  it('fails a message over the maximum size as soon as its prefix says so', () => {
    const ping = frame('9106');
    const r = reader(3);
    expect(readChunks(r, Buffer.concat([ping, ping]))).toEqual([{ type: 6 }, { type: 6 }]);
    const tooBig = protocol.writeMessage({ type: 7 }); // 5 bytes
    expect(errorOf(() => readChunks(r, tooBig.subarray(0, 1)))).toBe(maximumMessageSizeExceeded(3).message);
    expect(errorOf(() => readChunks(reader(32768), fromHex('ffff03')))).toBe(maximumMessageSizeExceeded(32768).message);
    expect(readChunks(reader(5), tooBig)).toEqual([{ type: 7 }]);
  });

  it('hands on the messages before an invalid one in the same chunk, then fails', () => {
    const r = reader();
    const seen: HubMessage[] = [];
    expect(errorOf(() => r.push(Buffer.concat([frame('9106'), frame('90')]), (message) => seen.push(message)))).toBe(
      "Reading 'messageType' as Int32 failed.",
    );
    expect(seen).toEqual([{ type: 6 }]);
  });
});
