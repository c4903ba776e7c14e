/**
 * Raw MessagePack frames (docs/protocol.md §2.1, §2.3–§2.9) against both servers offering JSON and MessagePack: the handshake,
 * the integer widths and value kinds of results, and the hub-layer behaviours that `KNOWN-DIFFERENCES.md` lists for
 * JSON — unknown message types, null and invalid UTF-8 for string parameters, detailed error texts, a stream's items
 * against the rest of its frame, a reused stream id — checked on the second protocol. Messages the servers send are
 * observed as `msgpack:<hex>` of their body (without the length prefix), so every byte counts.
 */
import { encode } from '@msgpack/msgpack';
import type { Observation, Scenario, Step } from '../engine/scenario';
import { differs, RS } from './frames';

/** The handshake the official client sends for MessagePack (a JSON record, as for every protocol). */
const MSGPACK_HANDSHAKE = `{"protocol":"messagepack","version":1}${RS}`;

/** A VarInt length prefix (docs/protocol.md §2.1). */
function lengthPrefix(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** One message: its MessagePack body (an array, or exact bytes) with its length prefix. */
function message(body: unknown[] | Buffer): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(encode(body));
  return Buffer.concat([lengthPrefix(bytes.length), bytes]);
}

/** An Invocation `[1, headers, invocationId, target, arguments, streamIds]`; `invocationId` null for a send. */
function invocation(invocationId: string | null, target: string, ...args: unknown[]): Buffer {
  return message([1, {}, invocationId, target, args, []]);
}

/** A StreamInvocation `[4, headers, invocationId, target, arguments, streamIds]`. */
function streamInvocation(invocationId: string, target: string, ...args: unknown[]): Buffer {
  return message([4, {}, invocationId, target, args, []]);
}

/** A CancelInvocation `[5, headers, invocationId]`. */
function cancel(invocationId: string): Buffer {
  return message([5, {}, invocationId]);
}

/** The MessagePack `str` of raw bytes (str8), to send text that is not valid UTF-8. */
function rawStr(bytes: number[]): Buffer {
  return Buffer.from([0xd9, bytes.length, ...bytes]);
}

/** Opens a WebSocket without negotiate and completes the MessagePack handshake (the answer is the JSON `{}`). */
function connected(): Step[] {
  return [{ open: '', protocol: 'messagepack' }, { send: MSGPACK_HANDSHAKE }, { receive: 1 }];
}

/** What {@link connected} observes: the socket opens and the handshake is answered `{}`, in a binary frame. */
const MSGPACK_CONNECTED: Observation = [
  { open: '', accepted: true },
  { receive: 1, messages: ['{}'], frames: 'binary' },
];

export const messagePackFrameScenarios: Scenario[] = [
  {
    name: 'the MessagePack handshake is answered with the JSON {} in a binary frame, then a Completion',
    steps: [...connected(), { send: invocation('1', 'Echo', 'hi') }, { receive: 1 }],
  },
  {
    name: 'Echo answers each integer in the width .NET writes it',
    steps: [
      ...connected(),
      {
        send: Buffer.concat(
          [0, 127, 128, 255, 256, 65535, 65536, 70000, 4294967296, -1, -32, -33, -129, -40000].map((n, i) =>
            invocation(String(i), 'Echo', n),
          ),
        ),
      },
      { receive: 14 },
    ],
  },
  differs(
    {
      name: 'Echo answers floats, booleans, nil, strings, bytes, arrays and maps',
      steps: [
        ...connected(),
        {
          send: Buffer.concat(
            [
              3.5,
              true,
              false,
              null,
              'héllo ✓',
              new Uint8Array([0, 1, 254, 255]),
              [1, 'two', null],
              { a: 1, b: [1, 2] },
            ].map((v, i) => invocation(String(i), 'Echo', v)),
          ),
        },
        { receive: 8 },
      ],
    },
    'Integers inside MessagePack arrays and maps are written in their smallest form',
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 8,
        messages: [
          'msgpack:950380a13003cb400c000000000000',
          'msgpack:950380a13103c3',
          'msgpack:950380a13203c2',
          'msgpack:950380a13303c0',
          'msgpack:950380a13403aa68c3a96c6c6f20e29c93',
          'msgpack:950380a13503c4040001feff',
          'msgpack:950380a1360393cc01a374776fc0',
          'msgpack:950380a1370382a161cc01a16292cc01cc02',
        ],
        frames: 'binary',
      },
    ],
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 8,
        messages: [
          'msgpack:950380a13003cb400c000000000000',
          'msgpack:950380a13103c3',
          'msgpack:950380a13203c2',
          'msgpack:950380a13303c0',
          'msgpack:950380a13403aa68c3a96c6c6f20e29c93',
          'msgpack:950380a13503c4040001feff',
          'msgpack:950380a136039301a374776fc0',
          'msgpack:950380a1370382a16101a162920102',
        ],
        frames: 'binary',
      },
    ],
  ),
  {
    name: 'a non-blocking invocation gets no answer',
    steps: [
      ...connected(),
      { send: invocation(null, 'Echo', 'x') },
      { send: invocation('1', 'Echo', 'after') },
      { receive: 1 },
      { listen: 200 },
    ],
  },
  differs(
    {
      name: 'an unknown message type, then an invocation',
      steps: [
        ...connected(),
        { send: message([42, {}, 'whatever']) },
        { send: invocation('1', 'Echo', 'after') },
        { receive: 1, timeoutMs: 500 },
      ],
    },
    'Unknown message types are skipped',
    [...MSGPACK_CONNECTED, { receive: 1, messages: [], timedOut: true }],
    [...MSGPACK_CONNECTED, { receive: 1, messages: ['msgpack:950380a13103a56166746572'], frames: 'binary' }],
  ),
  differs(
    {
      name: 'nil for a parameter typed string',
      steps: [...connected(), { send: invocation('1', 'JoinRoom', null) }, { receive: 1 }],
    },
    'Null for a parameter typed string',
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 1,
        messages: [
          'msgpack:950380a13101d93f416e20756e6578706563746564206572726f72206f6363757272656420696e766f6b696e6720274a6f696e526f6f6d27206f6e20746865207365727665722e',
        ],
        frames: 'binary',
      },
    ],
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 1,
        messages: [
          'msgpack:950380a13101d93a4661696c656420746f20696e766f6b6520274a6f696e526f6f6d272064756520746f20616e206572726f72206f6e20746865207365727665722e',
        ],
        frames: 'binary',
      },
    ],
  ),
  {
    name: 'a string argument that is not valid UTF-8',
    steps: [
      ...connected(),
      {
        send: message(
          Buffer.concat([
            Buffer.from([0x96, 0x01, 0x80, 0xa1, 0x31, 0xa4]),
            Buffer.from('Fail'),
            Buffer.from([0x91]),
            rawStr([0x61, 0xff, 0x62]),
            Buffer.from([0x90]),
          ]),
        ),
      },
      { receive: 1 },
    ],
  },
  {
    name: 'a string where an int belongs fails binding',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 'three', 0) }, { receive: 1 }],
  },
  {
    name: 'a HubException reaches the caller; another exception does not',
    steps: [
      ...connected(),
      { send: Buffer.concat([invocation('1', 'Fail', 'nope'), invocation('2', 'Crash')]) },
      { receive: 2 },
    ],
  },
  differs(
    {
      name: 'with detailed errors, an exception names its type',
      settings: { enableDetailedErrors: true },
      steps: [...connected(), { send: invocation('1', 'Crash') }, { receive: 1 }],
    },
    'Exception type names in detailed errors',
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 1,
        messages: [
          'msgpack:950380a13101d97b416e20756e6578706563746564206572726f72206f6363757272656420696e766f6b696e672027437261736827206f6e20746865207365727665722e20496e76616c69644f7065726174696f6e457863657074696f6e3a2043726173682829206661696c656420776974682061207365637265742064657461696c',
        ],
        frames: 'binary',
      },
    ],
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 1,
        messages: [
          'msgpack:950380a13101d967416e20756e6578706563746564206572726f72206f6363757272656420696e766f6b696e672027437261736827206f6e20746865207365727665722e204572726f723a2043726173682829206661696c656420776974682061207365637265742064657461696c',
        ],
        frames: 'binary',
      },
    ],
  ),
  {
    name: 'Counter streams its items and completes',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 3, 0) }, { receive: 4 }, { listen: 100 }],
  },
  differs(
    {
      name: 'a stream and an Echo in one frame',
      steps: [
        ...connected(),
        { send: Buffer.concat([streamInvocation('1', 'Counter', 2, 0), invocation('2', 'Echo', 'after')]) },
        { receive: 4 },
      ],
    },
    "A stream's first item follows the rest of its frame",
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 4,
        messages: [
          'msgpack:940280a13100',
          'msgpack:940280a13101',
          'msgpack:940380a13102',
          'msgpack:950380a13203a56166746572',
        ],
        frames: 'binary',
      },
    ],
    [
      ...MSGPACK_CONNECTED,
      {
        receive: 4,
        messages: [
          'msgpack:950380a13203a56166746572',
          'msgpack:940280a13100',
          'msgpack:940280a13101',
          'msgpack:940380a13102',
        ],
        frames: 'binary',
      },
    ],
  ),
  {
    name: 'CancelInvocation ends a stream with a plain Completion',
    steps: [
      ...connected(),
      { send: streamInvocation('1', 'Counter', 1000, -1) },
      { receive: 1 },
      { send: cancel('1') },
      { receive: 1 },
    ],
  },
  differs(
    {
      name: 'a second StreamInvocation with the id of a running stream, then CancelInvocation',
      steps: [
        ...connected(),
        { send: streamInvocation('1', 'Counter', 1000, -1) },
        { receive: 1 },
        { send: streamInvocation('1', 'Counter', 1, 0) },
        { receive: 1 },
        { send: cancel('1') },
        { receive: 1, timeoutMs: 1000 },
      ],
    },
    'A stream whose invocation id was reused can still be cancelled',
    [
      ...MSGPACK_CONNECTED,
      { receive: 1, messages: ['msgpack:940280a13100'], frames: 'binary' },
      {
        receive: 1,
        messages: ['msgpack:950380a13101d924496e766f636174696f6e2049442027312720697320616c726561647920696e207573652e'],
        frames: 'binary',
      },
      { receive: 1, messages: [], timedOut: true },
    ],
    [
      ...MSGPACK_CONNECTED,
      { receive: 1, messages: ['msgpack:940280a13100'], frames: 'binary' },
      {
        receive: 1,
        messages: ['msgpack:950380a13101d924496e766f636174696f6e2049442027312720697320616c726561647920696e207573652e'],
        frames: 'binary',
      },
      { receive: 1, messages: ['msgpack:940380a13102'], frames: 'binary' },
    ],
  ),
  {
    name: 'a Ping is not answered, and the connection goes on',
    steps: [...connected(), { send: message([6]) }, { send: invocation('1', 'Echo', 'after') }, { receive: 1 }],
  },
  {
    name: 'a client Close ends the connection',
    steps: [...connected(), { send: message([7, null, false]) }, { closed: true }],
  },
  {
    name: 'a message that is not MessagePack closes the connection with an error',
    steps: [...connected(), { send: message(Buffer.from([0xc1])) }, { receive: 1 }, { closed: true }],
  },
];
