/**
 * The MessagePack hub protocol with the real client (docs/protocol.md §2.5, §1.5): WebSockets and long polling, every
 * value kind, errors, Binary frames from the handshake reply on, broadcasts to mixed JSON and MessagePack clients
 * serialized once per protocol, and malformed MessagePack answered as .NET does.
 *
 * The reference server cannot offer MessagePack (its package cannot be restored offline), so the differential
 * conformance suite does not cover it; "on the wire" checks the exact bytes against the layouts .NET's
 * `MessagePackHubProtocolWorker` writes instead.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { SerializedHubMessage } from '../../src';
import { jsonHubProtocol, messagePackHubProtocol } from '../../protocol';
import { ClientPool, delay } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';
/** `[1, {}, "1", "Echo", ["hi"]]` as the official client frames it (5 items, no stream ids). */
const ECHO_HI = '0e950180a131a44563686f91a26869';
/** `[3, {}, "1", 3, "hi"]`: the Completion with result .NET writes for it. */
const ECHO_HI_RESULT = '09950380a13103a26869';
let server: RunningServer;
const pool = new ClientPool(() => server.hubUrl);

beforeAll(async () => {
  server = await startChatServer();
});
afterAll(async () => {
  await pool.stopAll();
  await server.close();
});

describe.each([
  ['WebSockets', HttpTransportType.WebSockets],
  ['LongPolling', HttpTransportType.LongPolling],
])('over %s', (_name, transport) => {
  const connect = (observe: string[] = ['ReceiveMessage', 'Values']) =>
    pool.connect({ transport, protocol: new MessagePackHubProtocol() }, observe);

  test.each([
    ['string', 'héllo ✓'],
    ['small integer', 42],
    ['negative integer', -1],
    ['uint16', 300],
    ['uint32', 70000],
    ['beyond 32 bits', 5000000000],
    ['float', 3.5],
    ['boolean', true],
    ['null', null],
    ['nested object', { a: { b: [1, 'two', { c: null }] } }],
    ['binary', new Uint8Array([0, 1, 254, 255])],
    ['date', new Date(Date.UTC(2020, 0, 2, 3, 4, 5))],
  ])('Echo returns a %s', async (_kind, value) => {
    const { connection } = await connect([]);
    expect(await connection.invoke('Echo', value)).toEqual(value);
  });

  test("errors carry .NET's texts", async () => {
    const { connection } = await connect([]);
    await expect(connection.invoke('Fail', 'msgpack says no')).rejects.toThrow(
      "An unexpected error occurred invoking 'Fail' on the server. HubException: msgpack says no",
    );
    await expect(connection.invoke('Nope')).rejects.toThrow(
      "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.",
    );
    await expect(connection.invoke('Echo')).rejects.toThrow("Failed to invoke 'Echo' due to an error on the server.");
  });

  test('SendValues arrives with every kind intact', async () => {
    const client = await connect();
    await client.connection.invoke('SendValues');
    const [values] = await client.inbox('Values').waitFor(1);
    expect(values).toEqual([
      42,
      -1,
      300,
      70000,
      5000000000,
      3.5,
      true,
      null,
      'héllo ✓',
      new Uint8Array([0, 1, 254, 255]),
      new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
      { a: 1, b: [1, 2] },
    ]);
    expect(values[9]).toBeInstanceOf(Uint8Array);
    expect(values[10]).toBeInstanceOf(Date);
  });
});

test('a broadcast reaches JSON and MessagePack clients alike, serialized once per protocol', async () => {
  const json = await pool.connect({}, ['ReceiveMessage', 'Values']);
  const msgpack = await pool.connect({ protocol: new MessagePackHubProtocol() }, ['ReceiveMessage', 'Values']);
  const msgpackLongPolling = await pool.connect(
    { protocol: new MessagePackHubProtocol(), transport: HttpTransportType.LongPolling },
    ['ReceiveMessage', 'Values'],
  );
  const serializations: string[] = [];
  const original = SerializedHubMessage.prototype.getBytes;
  const spy = jest.spyOn(SerializedHubMessage.prototype, 'getBytes').mockImplementation(function (
    this: SerializedHubMessage,
    protocol,
  ) {
    const cached = (this as unknown as { names: string[] }).names.includes(protocol.name);
    if (!cached) serializations.push(protocol.name);
    return original.call(this, protocol);
  });
  try {
    await json.connection.invoke('SendValues');
    for (const client of [json, msgpack, msgpackLongPolling]) await client.inbox('Values').waitFor(1);
  } finally {
    spy.mockRestore();
  }
  expect(serializations.sort()).toEqual(['json', 'messagepack']);
  expect(json.inbox('Values').items[0][9]).toBe('AAH+/w==');
  expect(json.inbox('Values').items[0][10]).toBe('2020-01-02T03:04:05Z');
  expect(msgpack.inbox('Values').items[0][9]).toEqual(new Uint8Array([0, 1, 254, 255]));
  expect(msgpackLongPolling.inbox('Values').items[0][10]).toEqual(new Date(Date.UTC(2020, 0, 2, 3, 4, 5)));
});

describe('on the wire', () => {
  const sockets: RawWebSocket[] = [];
  afterEach(() => sockets.splice(0).forEach((socket) => socket.close()));

  async function open(): Promise<RawWebSocket> {
    const socket = await RawWebSocket.connect(server.hubUrl);
    sockets.push(socket);
    return socket;
  }

  test('the handshake reply comes in a Binary frame, then Binary frames with VarInt-framed messages', async () => {
    const socket = await open();
    socket.send(`{"protocol":"messagepack","version":1}${RS}`);
    const reply = await socket.frame(0);
    expect(reply.binary).toBe(true);
    expect(reply.data.toString('hex')).toBe('7b7d1e');
    // The official client's 5-item Invocation [1, {}, "1", "Echo", ["hi"]], framed.
    socket.send(Buffer.from(ECHO_HI, 'hex'));
    const completion = await socket.frame(1);
    expect(completion.binary).toBe(true);
    // Completion [3, {}, "1", 3 (result), "hi"], framed.
    expect(completion.data.toString('hex')).toBe(ECHO_HI_RESULT);
  });

  test('handshake errors go out as Text', async () => {
    const socket = await open();
    socket.send(`{"protocol":"messagepack","version":9}${RS}`);
    const reply = await socket.frame(0);
    expect(reply.binary).toBe(false);
    expect(reply.text).toBe(`{"error":"The server does not support version 9 of the 'messagepack' protocol."}${RS}`);
  });

  test.each([
    ['an array claiming more items than its body holds', '03950180'],
    ['a wrong array length', '03920106'],
    ['a string where the type belongs', '0391a178'],
    ['a VarInt over 5 bytes', 'ffffffffff01'],
    ['a length over 2 GB', 'ffffffff0f'],
    ['a body that is not an array', '02a178'],
    ['an unknown result kind', '0694038' + '0a13109'],
  ])("%s closes the connection with .NET's Close error", async (_name, hex) => {
    const socket = await open();
    socket.send(`{"protocol":"messagepack","version":1}${RS}`);
    await socket.frame(0);
    socket.send(Buffer.from(hex, 'hex'));
    expect((await socket.closed).code).toBe(1000);
    const received = Buffer.concat(socket.frames.map((frame) => frame.data));
    // {} RS, then Close [7, "Connection closed with an error.", true] framed.
    const close = messagePackHubProtocol.writeMessage({
      type: 7,
      error: 'Connection closed with an error.',
      allowReconnect: true,
    });
    expect(received.toString('hex')).toBe('7b7d1e' + close.toString('hex'));
  });

  /** Opens a socket and completes the MessagePack handshake. */
  async function handshaken(): Promise<RawWebSocket> {
    const socket = await open();
    socket.send(`{"protocol":"messagepack","version":1}${RS}`);
    await socket.frame(0);
    return socket;
  }

  /** A MessagePack body (hex, spaces allowed) with its one-byte VarInt length (bodies under 128 bytes). */
  const framed = (hex: string): Buffer => {
    const body = Buffer.from(hex.replace(/ /g, ''), 'hex');
    return Buffer.concat([Buffer.from([body.length]), body]);
  };
  /** MessagePack str8 of an ASCII text: d9, length, bytes. */
  const str8 = (text: string): string =>
    `d9${text.length.toString(16).padStart(2, '0')}${Buffer.from(text).toString('hex')}`;

  test('integers of every width come back in the smallest encoding, as .NET writes them', async () => {
    const socket = await handshaken();
    // Echo([42, -1, 300 (uint16), 70000 (uint32), 5000000000 (uint64)]).
    socket.send(framed('95 01 80 a1 31 a4 45 63 68 6f 91 95 2a ff cd 01 2c ce 00 01 11 70 cf 00 00 00 01 2a 05 f2 00'));
    const completion = await socket.frame(1);
    // [3, {}, "1", 3, [...]]: positive integers as fixint / uint16 / uint32 / uint64, -1 as negative fixint.
    expect(completion.data.toString('hex')).toBe(
      framed('95 03 80 a1 31 03 95 2a ff cd 01 2c ce 00 01 11 70 cf 00 00 00 01 2a 05 f2 00').toString('hex'),
    );
  });

  test('an invocation with six items (an empty stream id list) is read', async () => {
    const socket = await handshaken();
    // [1, {}, "1", "Echo", [true], []], as .NET's client writes it.
    socket.send(framed('96 01 80 a1 31 a4 45 63 68 6f 91 c3 90'));
    expect((await socket.frame(1)).data.toString('hex')).toBe(framed('95 03 80 a1 31 03 c3').toString('hex'));
  });

  test('a Ping gets no answer; a Close is answered with a three-item Close and a normal close', async () => {
    const socket = await handshaken();
    socket.send(framed('91 06'));
    await delay(200);
    expect(socket.frames).toHaveLength(1);
    // [7, nil], as older clients write it: the answer has .NET's three items [7, nil, false].
    socket.send(framed('92 07 c0'));
    expect((await socket.closed).code).toBe(1000);
    expect(Buffer.concat(socket.frames.slice(1).map((frame) => frame.data)).toString('hex')).toBe(
      framed('93 07 c0 c2').toString('hex'),
    );
  });

  test("an unknown method: the Completion carries .NET's error", async () => {
    const socket = await handshaken();
    // [1, {}, "1", "Missing", []].
    socket.send(framed('95 01 80 a1 31 a7 4d 69 73 73 69 6e 67 90'));
    const completion = await socket.frame(1);
    const error = str8(
      "Failed to invoke 'Missing' due to an error on the server. HubException: Method does not exist.",
    );
    // [3, {}, "1", 1 (error), "..."].
    expect(completion.data.toString('hex')).toBe(framed(`95 03 80 a1 31 01 ${error}`).toString('hex'));
  });

  test('a message that is not an array closes with the Close .NET writes', async () => {
    const socket = await handshaken();
    socket.send(framed('a3 61 62 63'));
    expect((await socket.closed).code).toBe(1000);
    // [7, "Connection closed with an error.", true]: 32 characters need str8.
    expect(socket.frames[1].data.toString('hex')).toBe(
      framed(`93 07 ${str8('Connection closed with an error.')} c3`).toString('hex'),
    );
  });

  test('an unknown message type is skipped', async () => {
    const socket = await open();
    socket.send(`{"protocol":"messagepack","version":1}${RS}`);
    await socket.frame(0);
    // [42], then the Echo invocation.
    socket.send(Buffer.from('02912a' + ECHO_HI, 'hex'));
    expect((await socket.frame(1)).data.toString('hex')).toBe(ECHO_HI_RESULT);
  });
});

test('the JSON and MessagePack serializations of a message are what each protocol writes', () => {
  const message = new SerializedHubMessage({ type: 1, target: 'T', arguments: [1] });
  expect(message.getBytes(jsonHubProtocol).toString()).toBe(`{"type":1,"target":"T","arguments":[1]}${RS}`);
  // .NET's 6-item layout: [1, {}, nil, "T", [1], []].
  expect(message.getBytes(messagePackHubProtocol).toString('hex')).toBe('09960180c0a154910190');
});
