/**
 * The WebSockets transport seen by a raw peer (docs/protocol.md §1.5): ids, 404/409, Text frames holding whole
 * messages, inbound frame boundaries ignored, several messages coalesced into one frame.
 */
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';

let server: RunningServer;
const sockets: RawWebSocket[] = [];
const RS = '\u001e';

beforeAll(async () => {
  server = await startChatServer();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});
afterAll(() => server.close());

async function open(query = ''): Promise<RawWebSocket> {
  const socket = await RawWebSocket.connect(`${server.hubUrl}${query}`);
  sockets.push(socket);
  return socket;
}

async function negotiateToken(): Promise<string> {
  const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
  return (await response.json()).connectionToken;
}

test('an unknown id is refused with 404 before the upgrade', async () => {
  expect(await RawWebSocket.refused(`${server.hubUrl}?id=unknown`)).toEqual({
    status: 404,
    body: 'No Connection with that ID',
  });
});

test('a second socket for a connection is refused with 409', async () => {
  const token = await negotiateToken();
  await open(`?id=${token}`);
  expect(await RawWebSocket.refused(`${server.hubUrl}?id=${token}`)).toEqual({ status: 409, body: '' });
});

test('the id key is case-insensitive', async () => {
  const token = await negotiateToken();
  const socket = await open(`?ID=${token}`);
  socket.send(`{"protocol":"json","version":1}${RS}`);
  expect((await socket.frame(0)).text).toBe(`{}${RS}`);
});

test('without an id a fresh connection starts (skipNegotiation)', async () => {
  const socket = await open();
  socket.send(`{"protocol":"json","version":1}${RS}`);
  const reply = await socket.frame(0);
  expect(reply).toMatchObject({ text: `{}${RS}`, binary: false });
});

test('a handshake split over frames and followed by messages in the same frame is read as one stream', async () => {
  const socket = await open();
  socket.send('{"protocol":');
  socket.send(`"json","version":1}${RS}{"type":1,"invocationId":"1","target":"Echo","arg`);
  socket.send(`uments":["a"]}${RS}{"type":1,"invocationId":"2","target":"Echo","arguments":["b"]}${RS}`);
  const frames: string[] = [];
  for (let i = 0; frames.join('').split(RS).length < 4; i++) frames.push((await socket.frame(i)).text);
  const messages = frames.join('').split(RS).filter(Boolean);
  expect(messages).toEqual([
    '{}',
    '{"type":3,"invocationId":"1","result":"a"}',
    '{"type":3,"invocationId":"2","result":"b"}',
  ]);
  // Every frame holds whole messages only.
  for (const frame of frames) expect(frame.endsWith(RS)).toBe(true);
});

test('messages queued in one turn leave as one Text frame', async () => {
  const socket = await open();
  socket.send(`{"protocol":"json","version":1}${RS}`);
  await socket.frame(0);
  // Two sends in one frame are processed in one turn; their broadcasts and completion coalesce.
  socket.send(
    `{"type":1,"target":"SendMessage","arguments":["a","1"]}${RS}{"type":1,"target":"SendMessage","arguments":["a","2"]}${RS}`,
  );
  const frame = await socket.frame(1);
  expect(frame.binary).toBe(false);
  expect(frame.text).toBe(
    `{"type":1,"target":"ReceiveMessage","arguments":["a","1"]}${RS}{"type":1,"target":"ReceiveMessage","arguments":["a","2"]}${RS}`,
  );
});

test('a client Close is answered with a Close and a 1000 close frame', async () => {
  const socket = await open();
  socket.send(`{"protocol":"json","version":1}${RS}`);
  await socket.frame(0);
  socket.send(`{"type":7}${RS}`);
  expect((await socket.frame(1)).text).toBe(`{"type":7}${RS}`);
  expect((await socket.closed).code).toBe(1000);
});
