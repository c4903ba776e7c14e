/**
 * The JSON hub protocol against golden bytes: what .NET writes (docs/protocol.md §2.4 property order), what the
 * official client writes (type last), every stream split at every byte offset, and .NET's rejection texts.
 */
import { JsonHubProtocol as ClientJsonHubProtocol, NullLogger } from '@microsoft/signalr';
import { HubProtocolError, jsonHubProtocol, MessageType, type HubMessage, type HubMessageReader } from '../../protocol';

const RS = '\u001e';

/**
 * Messages and the exact text .NET writes for them
 * (src/SignalR/common/Protocols.Json/src/Protocol/JsonHubProtocol.cs@v10.0.0 L516-L726).
 */
const WRITTEN: Array<[string, HubMessage, string]> = [
  [
    'invocation without id',
    { type: 1, target: 'Send', arguments: ['hi'] },
    '{"type":1,"target":"Send","arguments":["hi"]}',
  ],
  [
    'invocation with id',
    { type: 1, invocationId: '1', target: 'Echo', arguments: [1, null, true] },
    '{"type":1,"invocationId":"1","target":"Echo","arguments":[1,null,true]}',
  ],
  [
    'invocation with headers and stream ids',
    { type: 1, headers: { a: 'b' }, invocationId: '2', target: 'T', arguments: [], streamIds: ['3'] },
    '{"type":1,"headers":{"a":"b"},"invocationId":"2","target":"T","arguments":[],"streamIds":["3"]}',
  ],
  [
    'stream invocation',
    { type: 4, invocationId: '7', target: 'Counter', arguments: [3, 10] },
    '{"type":4,"invocationId":"7","target":"Counter","arguments":[3,10]}',
  ],
  ['stream item', { type: 2, invocationId: '7', item: { x: 1 } }, '{"type":2,"invocationId":"7","item":{"x":1}}'],
  ['stream item null', { type: 2, invocationId: '7', item: null }, '{"type":2,"invocationId":"7","item":null}'],
  ['completion with result', { type: 3, invocationId: '1', result: 42 }, '{"type":3,"invocationId":"1","result":42}'],
  [
    'completion with null result',
    { type: 3, invocationId: '1', result: null },
    '{"type":3,"invocationId":"1","result":null}',
  ],
  ['completion void', { type: 3, invocationId: '1' }, '{"type":3,"invocationId":"1"}'],
  ['completion error', { type: 3, invocationId: '1', error: 'boom' }, '{"type":3,"invocationId":"1","error":"boom"}'],
  ['cancel invocation', { type: 5, invocationId: '9' }, '{"type":5,"invocationId":"9"}'],
  ['ping', { type: 6 }, '{"type":6}'],
  ['close', { type: 7 }, '{"type":7}'],
  [
    'close with error, reconnect allowed',
    { type: 7, error: 'Connection closed with an error.', allowReconnect: true },
    '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}',
  ],
  ['ack', { type: 8, sequenceId: 5 }, '{"type":8,"sequenceId":5}'],
  ['sequence', { type: 9, sequenceId: 1 }, '{"type":9,"sequenceId":1}'],
  [
    'non-ASCII text is not escaped',
    { type: 1, target: 'R', arguments: ['héllo ✓'] },
    '{"type":1,"target":"R","arguments":["héllo ✓"]}',
  ],
];

/**
 * What the official client sends (docs/stack.md §2.3; src/SignalR/clients/ts/signalr/src/HubConnection.ts builds
 * objects with `type` last).
 */
const CLIENT_FRAMES: Array<[string, string, HubMessage]> = [
  ['handshake-followed ping', '{"type":6}', { type: 6 }],
  [
    'invocation, type last',
    '{"target":"Echo","arguments":["hi"],"invocationId":"0","type":1}',
    { type: 1, target: 'Echo', arguments: ['hi'], invocationId: '0' },
  ],
  [
    'send without id',
    '{"target":"SendMessage","arguments":["a","b"],"type":1}',
    { type: 1, target: 'SendMessage', arguments: ['a', 'b'] },
  ],
  [
    'upload invocation',
    '{"target":"Sum","arguments":[],"invocationId":"1","streamIds":["2"],"type":1}',
    { type: 1, target: 'Sum', arguments: [], invocationId: '1', streamIds: ['2'] },
  ],
  ['stream item', '{"invocationId":"2","item":5,"type":2}', { type: 2, invocationId: '2', item: 5 }],
  [
    'client result',
    '{"invocationId":"s1","result":"answer","type":3}',
    { type: 3, invocationId: 's1', result: 'answer' },
  ],
  [
    'client error',
    '{"invocationId":"s2","error":"Client didn\'t provide a result.","type":3}',
    { type: 3, invocationId: 's2', error: "Client didn't provide a result." },
  ],
  ['close', '{"type":7}', { type: 7 }],
  [
    'unknown property skipped',
    '{"type":1,"target":"Echo","arguments":[1],"extra":{"deep":[1,2]}}',
    { type: 1, target: 'Echo', arguments: [1] },
  ],
  [
    'empty invocation id is non-blocking',
    '{"type":1,"invocationId":"","target":"Echo","arguments":[]}',
    { type: 1, target: 'Echo', arguments: [] },
  ],
  [
    'empty headers dropped',
    '{"type":1,"headers":{},"target":"Echo","arguments":[]}',
    { type: 1, target: 'Echo', arguments: [] },
  ],
];

/** Feeds `text` in chunks of `chunkSize` (all at once by default) and collects the messages. */
function readAll(text: string | Buffer, chunkSize?: number): HubMessage[] {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const reader = jsonHubProtocol.createReader({ maximumMessageSize: null });
  const messages: HubMessage[] = [];
  const step = chunkSize ?? bytes.length;
  for (let offset = 0; offset < bytes.length; offset += step)
    reader.push(bytes.subarray(offset, offset + step), (m) => messages.push(m));
  return messages;
}

/** Feeds each chunk to one reader and collects the messages. */
function readChunks(reader: HubMessageReader, ...chunks: Uint8Array[]): HubMessage[] {
  const messages: HubMessage[] = [];
  for (const chunk of chunks) reader.push(chunk, (m) => messages.push(m));
  return messages;
}

describe('JSON hub protocol: writing', () => {
  test.each(WRITTEN)('%s', (_name, message, expected) => {
    expect(jsonHubProtocol.writeMessage(message).toString('utf8')).toBe(expected + RS);
  });

  // StreamInvocation and CancelInvocation only travel client → server; the client skips them.
  const SERVER_TO_CLIENT = WRITTEN.filter(([, message]) => message.type !== 4 && message.type !== 5);

  test.each(SERVER_TO_CLIENT)('the official client reads what we write: %s', (_name, message) => {
    const [parsed] = new ClientJsonHubProtocol().parseMessages(
      jsonHubProtocol.writeMessage(message).toString('utf8'),
      NullLogger.instance,
    );
    expect(parsed).toEqual(message);
  });

  test('payload values are written as System.Text.Json writes them', () => {
    const text = jsonHubProtocol
      .writeMessage({
        type: 1,
        target: 'Values',
        arguments: [
          5000000000,
          3.5,
          new Uint8Array([0, 1, 254, 255]),
          new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
          new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 120)),
          { a: 1, b: [1, 2] },
          undefined,
          10n,
        ],
      })
      .toString('utf8');
    expect(text).toBe(
      '{"type":1,"target":"Values","arguments":[5000000000,3.5,"AAH+/w==","2020-01-02T03:04:05Z","2020-01-02T03:04:05.12Z",{"a":1,"b":[1,2]},null,10]}' +
        RS,
    );
  });

  test('a Buffer nested in a result is base64, not its toJSON form', () => {
    const text = jsonHubProtocol
      .writeMessage({ type: 3, invocationId: '1', result: { data: Buffer.from('hi') } })
      .toString('utf8');
    expect(text).toBe('{"type":3,"invocationId":"1","result":{"data":"aGk="}}' + RS);
  });
});

describe('JSON hub protocol: reading', () => {
  test.each(CLIENT_FRAMES)('%s', (_name, json, expected) => {
    expect(readAll(json + RS)).toEqual([expected]);
  });

  test.each(WRITTEN)('reads back what .NET writes: %s', (_name, message, json) => {
    expect(readAll(json + RS)).toEqual([message]);
  });

  test("the official client's own output is read back", () => {
    const client = new ClientJsonHubProtocol();
    const sent: HubMessage[] = [
      { type: 1, target: 'Echo', arguments: [{ nested: [1, 'two', null] }], invocationId: '0' },
      { type: 4, target: 'Counter', arguments: [5, 0], invocationId: '1' },
      { type: 5, invocationId: '1' },
      { type: 6 },
      { type: 7 },
    ];
    const stream = sent.map((message) => client.writeMessage(message as never)).join('');
    expect(readAll(stream)).toEqual(sent);
  });

  test('every golden stream split at every byte offset yields the same messages', () => {
    const stream = [...WRITTEN.map(([, , json]) => json), ...CLIENT_FRAMES.map(([, json]) => json)].join(RS) + RS;
    const whole = readAll(stream);
    expect(whole).toHaveLength(WRITTEN.length + CLIENT_FRAMES.length);
    const bytes = Buffer.from(stream, 'utf8');
    for (let split = 1; split < bytes.length; split++) {
      const reader = jsonHubProtocol.createReader({ maximumMessageSize: null });
      expect(readChunks(reader, bytes.subarray(0, split), bytes.subarray(split))).toEqual(whole);
    }
    expect(readAll(stream, 1)).toEqual(whole);
    expect(readAll(stream, 7)).toEqual(whole);
  });

  test('a multi-byte character split across chunks is decoded once whole', () => {
    const bytes = Buffer.from('{"type":1,"target":"Echo","arguments":["✓"]}' + RS, 'utf8');
    const cut = bytes.indexOf(Buffer.from('✓')) + 1;
    const reader = jsonHubProtocol.createReader({ maximumMessageSize: null });
    expect(readChunks(reader, bytes.subarray(0, cut))).toEqual([]);
    expect(reader.bufferedBytes).toBe(cut);
    expect(readChunks(reader, bytes.subarray(cut))).toEqual([{ type: 1, target: 'Echo', arguments: ['✓'] }]);
    expect(reader.bufferedBytes).toBe(0);
  });

  test('unknown message types are skipped and the rest is read', () => {
    expect(readAll(`{"type":99,"x":1}${RS}{"type":6}${RS}`)).toEqual([{ type: MessageType.Ping }]);
  });
});

describe("JSON hub protocol: invalid input gets .NET's InvalidDataException texts", () => {
  const INVALID: Array<[string, string, string]> = [
    ['not JSON', 'hello', 'Error reading JSON.'],
    ['truncated JSON', '{"type":1,', 'Error reading JSON.'],
    ['an array', '[1,2]', "Unexpected JSON Token Type 'Array'. Expected a JSON Object."],
    ['a string', '"x"', "Unexpected JSON Token Type 'String'. Expected a JSON Object."],
    ['null', 'null', "Unexpected JSON Token Type 'Null'. Expected a JSON Object."],
    [
      'a fractional type',
      '{"type":1.5}',
      'Either the JSON value is not in a supported format, or is out of bounds for an Int32.',
    ],
    [
      'a type beyond Int32',
      '{"type":4294967297}',
      'Either the JSON value is not in a supported format, or is out of bounds for an Int32.',
    ],
    ['a null target', '{"type":1,"target":null,"arguments":[]}', "Expected 'target' to be of type String."],
    [
      'a null invocation id',
      '{"type":1,"invocationId":null,"target":"x","arguments":[]}',
      "Expected 'invocationId' to be of type String.",
    ],
    ['a null completion error', '{"type":3,"invocationId":"1","error":null}', "Expected 'error' to be of type String."],
    ['missing type', '{"target":"x","arguments":[]}', "Missing required property 'type'."],
    ['type is a string', '{"type":"1"}', "Expected 'type' to be of type Number."],
    ['invocation without target', '{"type":1,"arguments":[]}', "Missing required property 'target'."],
    ['invocation without arguments', '{"type":1,"target":"x"}', "Missing required property 'arguments'."],
    ['arguments not an array', '{"type":1,"target":"x","arguments":{}}', "Expected 'arguments' to be of type Array."],
    ['target not a string', '{"type":1,"target":5,"arguments":[]}', "Expected 'target' to be of type String."],
    [
      'invocation id not a string',
      '{"type":1,"invocationId":1,"target":"x","arguments":[]}',
      "Expected 'invocationId' to be of type String.",
    ],
    [
      'header value not a string',
      '{"type":1,"headers":{"a":1},"target":"x","arguments":[]}',
      "Expected header 'a' to be of type String.",
    ],
    [
      'stream invocation without id',
      '{"type":4,"target":"x","arguments":[]}',
      "Missing required property 'invocationId'.",
    ],
    ['stream item without item', '{"type":2,"invocationId":"1"}', "Missing required property 'item'."],
    ['completion without id', '{"type":3,"result":1}', "Missing required property 'invocationId'."],
    [
      'completion with error and result',
      '{"type":3,"invocationId":"1","error":"e","result":1}',
      "The 'error' and 'result' properties are mutually exclusive.",
    ],
    ['cancel without id', '{"type":5}', "Missing required property 'invocationId'."],
    ['ack without sequence id', '{"type":8}', "Missing required property 'sequenceId'."],
    [
      'close with a non-boolean allowReconnect',
      '{"type":7,"allowReconnect":"yes"}',
      "Expected 'allowReconnect' to be true or false.",
    ],
  ];

  test.each(INVALID)('%s', (_name, json, error) => {
    expect(() => readAll(json + RS)).toThrow(error);
    expect(() => readAll(json + RS)).toThrow(HubProtocolError);
  });

  test('a number that is no Int32 is a FormatException, as Utf8JsonReader.GetInt32 throws', () => {
    expect(() => readAll('{"type":1.5}' + RS)).toThrow(expect.objectContaining({ name: 'FormatException' }));
  });

  test('invalid UTF-8 in a payload is replaced by U+FFFD; in a string the protocol reads it fails, as in .NET', () => {
    const inArgument = Buffer.concat([
      Buffer.from('{"type":1,"target":"x","arguments":["'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"]}' + RS),
    ]);
    expect(readAll(inArgument)).toEqual([{ type: 1, target: 'x', arguments: ['\ufffd\ufffd'] }]);
    const inTarget = Buffer.concat([
      Buffer.from('{"type":1,"target":"x'),
      Buffer.from([0xff]),
      Buffer.from('","arguments":[]}' + RS),
    ]);
    expect(() => readAll(inTarget)).toThrow('Cannot transcode invalid UTF-8 JSON text to UTF-16 string.');
  });

  test('an empty target is read (binding then finds no such method)', () => {
    expect(readAll('{"type":1,"target":"","arguments":[]}' + RS)).toEqual([{ type: 1, target: '', arguments: [] }]);
  });

  test('the size limit counts the separator: a message of exactly the limit passes, one byte more fails', () => {
    const limit = 64;
    const body = (length: number) => `{"type":1,"target":"x","arguments":["${'a'.repeat(length - 40)}"]}`;
    expect(body(63)).toHaveLength(63);
    const reader = jsonHubProtocol.createReader({ maximumMessageSize: limit });
    expect(readChunks(reader, Buffer.from(body(63) + RS))).toHaveLength(1);
    const failing = jsonHubProtocol.createReader({ maximumMessageSize: limit });
    expect(() => readChunks(failing, Buffer.from(body(64) + RS))).toThrow(
      'The maximum message size of 64B was exceeded. The message size can be configured in AddHubOptions.',
    );
  });

  test('an oversized message fails before its separator arrives', () => {
    const reader = jsonHubProtocol.createReader({ maximumMessageSize: 32 });
    expect(readChunks(reader, Buffer.from('{"type":1,"target":"x",'))).toEqual([]);
    expect(() => readChunks(reader, Buffer.from('"arguments":'))).toThrow(
      'The maximum message size of 32B was exceeded.',
    );
  });

  test('messages before an invalid one are handed on before the error', () => {
    const reader = jsonHubProtocol.createReader({ maximumMessageSize: null });
    const seen: HubMessage[] = [];
    expect(() => reader.push(Buffer.from(`{"type":6}${RS}nope${RS}{"type":6}${RS}`), (m) => seen.push(m))).toThrow(
      'Error reading JSON.',
    );
    expect(seen).toEqual([{ type: 6 }]);
  });
});
