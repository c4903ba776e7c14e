/**
 * Seeded corruption of valid bytes, for fuzzing the parsers (`test/protocol/fuzz.test.ts`) and the server behind
 * them (`test/integration/fuzz.test.ts`).
 */
import { MessageType, type HubMessage } from '../../protocol';

/** mulberry32: a small, fast, seedable generator (uniform in [0, 1)). */
export function generator(seed: number): () => number {
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
export const BOUNDARY_BYTES = [
  0x00, 0x01, 0x1e, 0x22, 0x7b, 0x7d, 0x7f, 0x80, 0x90, 0x91, 0x9f, 0xa0, 0xc0, 0xc1, 0xc4, 0xc7, 0xcc, 0xcf, 0xd3,
  0xd4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

/** One to four corruptions of `input`. */
export function mutate(input: Buffer, random: () => number): Buffer {
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
export function chunks(bytes: Buffer, random: () => number): Buffer[] {
  const cuts = Array.from({ length: Math.floor(random() * 5) }, () => Math.floor(random() * (bytes.length + 1))).sort(
    (a, b) => a - b,
  );
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(start, cut));
    start = cut;
  }
  return out;
}

/** Valid messages of every type, with the payload kinds each protocol carries. */
export const CORPUS: HubMessage[] = [
  { type: MessageType.Invocation, invocationId: '1', target: 'SendMessage', arguments: ['alice', 'hello ✓'] },
  {
    type: MessageType.Invocation,
    target: 'Fire',
    arguments: [1, -2, 3.5, true, null, { nested: [1, { deeper: 'x' }] }],
  },
  {
    type: MessageType.Invocation,
    invocationId: '7',
    target: 'Upload',
    arguments: [],
    streamIds: ['0', '1'],
    headers: { traceparent: '00-ab-cd-01' },
  },
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
