/**
 * Bad input from the network gets ASP.NET Core's answer and never disturbs the process or other connections:
 * malformed or unknown handshakes, garbage after the handshake, invalid JSON, wrong types, oversized messages, and
 * silence during the handshake (docs/protocol.md §2.1, §2.2, §2.8; texts checked against a real ASP.NET Core 10
 * server).
 */
import { ClientPool, type TestClient } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';
const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;
/** An Echo invocation whose framed size is exactly `size` bytes. */
function echoOfSize(size: number): string {
  const empty = `{"type":1,"invocationId":"1","target":"Echo","arguments":[""]}${RS}`;
  return empty.replace('[""]', `["${'z'.repeat(size - empty.length)}"]`);
}
const CLOSE_WITH_ERROR = `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`;

let server: RunningServer;
let detailed: RunningServer;
let small: RunningServer;
const pool = new ClientPool(() => server.hubUrl);
let bystander: TestClient;
const sockets: RawWebSocket[] = [];

beforeAll(async () => {
  server = await startChatServer({ handshakeTimeoutMs: 300 });
  detailed = await startChatServer({ enableDetailedErrors: true });
  small = await startChatServer({ maximumReceiveMessageSize: 1024 });
  bystander = await pool.connect();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});
afterAll(async () => {
  // Whatever the peers above sent, a well-behaved client on the same server never noticed.
  expect(await bystander.connection.invoke('Echo', 'unaffected')).toBe('unaffected');
  await pool.stopAll();
  await Promise.all([server.close(), detailed.close(), small.close()]);
});

async function open(target: RunningServer = server): Promise<RawWebSocket> {
  const socket = await RawWebSocket.connect(target.hubUrl);
  sockets.push(socket);
  return socket;
}

/**
 * Sends `frames` on a fresh socket and returns the close code and the messages received before the server closed
 * it (frame boundaries carry no meaning, so the stream is split at the separators).
 */
async function exchange(frames: Array<string | Buffer>, target: RunningServer = server) {
  const socket = await open(target);
  for (const frame of frames) socket.send(frame);
  const { code } = await socket.closed;
  return { code, messages: messagesOf(socket) };
}

function messagesOf(socket: RawWebSocket): string[] {
  return socket.frames
    .map((frame) => frame.text)
    .join('')
    .split(RS)
    .filter(Boolean)
    .map((message) => message + RS);
}

describe('handshake errors: an error record, then a normal close without a Close message', () => {
  test.each([
    ['not JSON', 'hello' + RS, 'An unexpected error occurred during connection handshake.'],
    [
      'a hub message instead of a handshake',
      `{"type":6}${RS}`,
      'An unexpected error occurred during connection handshake.',
    ],
    [
      'version of the wrong type',
      `{"protocol":"json","version":"1"}${RS}`,
      'An unexpected error occurred during connection handshake.',
    ],
    ['unknown protocol', `{"protocol":"xml","version":1}${RS}`, "The protocol 'xml' is not supported."],
    [
      'unsupported version',
      `{"protocol":"json","version":3}${RS}`,
      "The server does not support version 3 of the 'json' protocol.",
    ],
  ])('%s', async (_name, handshake, error) => {
    expect(await exchange([handshake])).toEqual({ code: 1000, messages: [`{"error":${JSON.stringify(error)}}${RS}`] });
  });

  test('protocol names match case-insensitively', async () => {
    const socket = await open();
    socket.send(`{"protocol":"JSON","version":1}${RS}`);
    expect((await socket.frame(0)).text).toBe(`{}${RS}`);
  });

  test('with detailed errors the malformed handshake names the reason', async () => {
    expect(await exchange([`{"protocol":"json"}${RS}`], detailed)).toEqual({
      code: 1000,
      messages: [
        `{"error":"An unexpected error occurred during connection handshake. InvalidDataException: Missing required property 'version'. Message content: {\\"protocol\\":\\"json\\"}"}${RS}`,
      ],
    });
  });

  test('no handshake within the handshake timeout', async () => {
    const socket = await open();
    socket.send('{"protocol":"js');
    expect((await socket.closed).code).toBe(1000);
    expect(messagesOf(socket)).toEqual([`{"error":"Handshake was canceled."}${RS}`]);
  });

  test('a handshake larger than the receive limit', async () => {
    expect(await exchange([`{"protocol":"json","version":1,"pad":"${'x'.repeat(2000)}"}${RS}`], small)).toEqual({
      code: 1000,
      messages: [`{"error":"Handshake was canceled."}${RS}`],
    });
  });
});

describe('after the handshake: a Close with error that allows reconnecting, then a normal close', () => {
  test.each([
    ['garbage text', 'hello world' + RS],
    ['invalid JSON', '{"type":1,"target":' + RS],
    ['a JSON array', '[1,2,3]' + RS],
    ['a string type', `{"type":"1","target":"Echo","arguments":[]}${RS}`],
    ['a numeric target', `{"type":1,"target":5,"arguments":[]}${RS}`],
    ['arguments that are not an array', `{"type":1,"target":"Echo","arguments":"x"}${RS}`],
    ['an invocation without arguments', `{"type":1,"invocationId":"1","target":"Echo"}${RS}`],
    ['binary garbage', Buffer.from([0xff, 0x00, 0x1e])],
  ])('%s', async (_name, frame) => {
    expect(await exchange([HANDSHAKE, frame])).toEqual({ code: 1000, messages: [`{}${RS}`, CLOSE_WITH_ERROR] });
  });

  test('a message over 32 KiB (the default limit)', async () => {
    const big = `{"type":1,"target":"Echo","arguments":["${'x'.repeat(33 * 1024)}"]}${RS}`;
    expect(await exchange([HANDSHAKE, big])).toEqual({ code: 1000, messages: [`{}${RS}`, CLOSE_WITH_ERROR] });
  });

  test('just under 32 KiB is fine', async () => {
    const socket = await open();
    const message = echoOfSize(32 * 1024);
    socket.send(HANDSHAKE + message);
    for (let i = 0; messagesOf(socket).length < 2; i++) await socket.frame(i);
    const payload = (JSON.parse(message.slice(0, -1)) as { arguments: string[] }).arguments[0];
    expect(messagesOf(socket)).toEqual([`{}${RS}`, `{"type":3,"invocationId":"1","result":"${payload}"}${RS}`]);
  });

  test('a configured limit applies: 1024 bytes passes, 1025 fails', async () => {
    const ok = await open(small);
    ok.send(HANDSHAKE + echoOfSize(1024));
    for (let i = 0; messagesOf(ok).length < 2; i++) await ok.frame(i);
    expect(messagesOf(ok)[1]).toMatch(/^\{"type":3,"invocationId":"1","result":"z+"\}/);
    expect(await exchange([HANDSHAKE, echoOfSize(1025)], small)).toEqual({
      code: 1000,
      messages: [`{}${RS}`, CLOSE_WITH_ERROR],
    });
  });

  test('with detailed errors the Close names the reason', async () => {
    expect(await exchange([HANDSHAKE, `{"type":1,"target":"Echo"}${RS}`], detailed)).toEqual({
      code: 1000,
      messages: [
        `{}${RS}`,
        `{"type":7,"error":"Connection closed with an error. InvalidDataException: Missing required property 'arguments'.","allowReconnect":true}${RS}`,
      ],
    });
  });

  test('messages before the bad one in the same frame are still processed', async () => {
    const result = await exchange([
      HANDSHAKE + `{"type":1,"invocationId":"1","target":"Echo","arguments":[7]}${RS}not json${RS}`,
    ]);
    expect(result.code).toBe(1000);
    expect(result.messages).toEqual([`{}${RS}`, `{"type":3,"invocationId":"1","result":7}${RS}`, CLOSE_WITH_ERROR]);
  });
});

describe('invocation-level mistakes get a Completion and keep the connection', () => {
  test('wrong argument count, unknown method, and a stream invocation of a plain method', async () => {
    const socket = await open();
    socket.send(
      HANDSHAKE +
        `{"type":1,"invocationId":"1","target":"Echo","arguments":[1,2]}${RS}` +
        `{"type":1,"invocationId":"2","target":"Missing","arguments":[]}${RS}` +
        `{"type":4,"invocationId":"3","target":"Echo","arguments":[1]}${RS}` +
        `{"type":1,"invocationId":"4","target":"Echo","arguments":["ok"]}${RS}`,
    );
    const expected = [
      '{}',
      `{"type":3,"invocationId":"1","error":"Failed to invoke 'Echo' due to an error on the server."}`,
      `{"type":3,"invocationId":"2","error":"Failed to invoke 'Missing' due to an error on the server. HubException: Method does not exist."}`,
      `{"type":3,"invocationId":"3","error":"The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation."}`,
      `{"type":3,"invocationId":"4","result":"ok"}`,
    ];
    const received = () =>
      socket.frames
        .map((frame) => frame.text)
        .join('')
        .split(RS)
        .filter(Boolean);
    for (let i = 0; received().length < expected.length; i++) await socket.frame(i);
    expect(received()).toEqual(expected);
  });

  test('an unknown message type is skipped and later messages are read', async () => {
    const socket = await open();
    socket.send(
      HANDSHAKE + `{"type":42,"whatever":true}${RS}{"type":1,"invocationId":"1","target":"Echo","arguments":[1]}${RS}`,
    );
    for (let i = 0; messagesOf(socket).length < 2; i++) await socket.frame(i);
    expect(messagesOf(socket)).toEqual([`{}${RS}`, `{"type":3,"invocationId":"1","result":1}${RS}`]);
  });
});
