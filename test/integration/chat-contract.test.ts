/**
 * The chat hub's contract end to end: the official client (`@microsoft/signalr`, and
 * `@microsoft/signalr-protocol-msgpack` for MessagePack) calls every method of `samples/chat/chat-hub.ts`, and the
 * sample's `GET /ask/:connectionId`, over every transport and protocol it can use, and sees what the ASP.NET Core
 * reference server answers (recorded in `test/conformance/reference-server.test.ts`): the same results, routing,
 * error texts, streams and client results.
 *
 * Each combination connects three clients: `a` and `c` are the user `alice`, `b` is `bob` and answers `GetAnswer`.
 * Who received a routed message is read behind a barrier: `a` broadcasts a marker after the routed call, and
 * messages on one connection keep their order, so once everyone has the marker every routed copy has arrived.
 */
import { Subject } from '@microsoft/signalr';
import { ChatHub } from '../../samples/chat/chat-hub';
import { ClientPool, eventually, type TestClient } from '../support/clients';
import { ALL_CLIENT_COMBINATIONS } from '../support/matrix';
import { startChatServer, type RunningServer } from '../support/servers';

/** The message of a rejection; fails when the promise resolves. */
async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a rejection');
}

/** `GET /ask/{id}` of the sample: status and text. */
async function askFromOutside(server: RunningServer, connectionId: string): Promise<[number, string]> {
  const response = await fetch(`${server.url}/ask/${encodeURIComponent(connectionId)}`);
  return [response.status, await response.text()];
}

/** JSON values whose round trip both protocols keep unchanged. */
const ECHO_VALUES: readonly unknown[] = [
  42,
  -1.5,
  0,
  5000000000,
  'text with "quotes", \\ and ü ✓',
  '',
  true,
  false,
  null,
  [1, 'two', null, [3]],
  { a: [1, { b: null }], nested: { deep: { x: 1.25 } }, empty: {} },
];

/** The hub methods the tests below call; a method added to the hub fails the first test until it is covered. */
const COVERED_METHODS = [
  'addToRoom',
  'askClient',
  'counter',
  'crash',
  'echo',
  'fail',
  'joinRoom',
  'leaveRoom',
  'removeFromRoom',
  'sendAllExcept',
  'sendMessage',
  'sendOthers',
  'sendOthersInRoom',
  'sendRoomExcept',
  'sendToConnection',
  'sendToConnections',
  'sendToRoom',
  'sendToRooms',
  'sendToUser',
  'sendToUsers',
  'sendValues',
  'sum',
  'whoAmI',
];

test('every method of the chat hub is covered here', () => {
  const methods = Object.getOwnPropertyNames(ChatHub.prototype).filter((name) => name !== 'constructor');
  expect(methods.sort()).toEqual(COVERED_METHODS);
});

let server: RunningServer;

beforeAll(async () => {
  server = await startChatServer();
});
afterAll(async () => {
  await server.close();
});

describe.each(ALL_CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => {
  const pool = new ClientPool(() => server.hubUrl);
  let a: TestClient;
  let b: TestClient;
  let c: TestClient;
  const ids = new Map<TestClient, string>();
  const names = new Map<TestClient, string>();
  let tags = 0;

  const connect = (user: string | undefined, handlers?: Record<string, (...args: unknown[]) => unknown>) =>
    pool.connect({ transport, protocol, query: user === undefined ? undefined : `user=${user}`, handlers }, [
      'ReceiveMessage',
      'Values',
    ]);

  beforeAll(async () => {
    [a, b, c] = await Promise.all([
      connect('alice'),
      connect('bob', { GetAnswer: (question) => `bob's answer to ${String(question)}` }),
      connect('alice'),
    ]);
    for (const [client, name] of [
      [a, 'a'],
      [b, 'b'],
      [c, 'c'],
    ] as const) {
      ids.set(client, client.connection.connectionId!);
      names.set(client, name);
    }
  });
  afterAll(() => pool.stopAll());

  const id = (client: TestClient) => ids.get(client)!;
  const messages = (client: TestClient) =>
    client.inbox('ReceiveMessage').items as Array<[string | null, string | null]>;

  /** Runs `send(tag)`, which should route `ReceiveMessage('routed', tag)`, and names who got it, once per copy. */
  async function whoGets(send: (tag: string) => Promise<unknown>): Promise<string[]> {
    const tag = `m${++tags}`;
    expect(await send(tag)).toBeNull();
    await a.connection.invoke('SendMessage', 'barrier', tag);
    await eventually(
      () => [a, b, c].every((client) => messages(client).some(([user, text]) => user === 'barrier' && text === tag)),
      `barrier ${tag}`,
    );
    return [a, b, c].flatMap((client) =>
      messages(client)
        .filter(([user, text]) => user === 'routed' && text === tag)
        .map(() => names.get(client)!),
    );
  }

  test('Echo returns any JSON value unchanged', async () => {
    for (const value of ECHO_VALUES) expect(await a.connection.invoke('Echo', value)).toEqual(value);
  });

  test('SendMessage reaches every connection, the caller too; a void method completes with null', async () => {
    expect(await whoGets((tag) => b.connection.invoke('SendMessage', 'routed', tag))).toEqual(['a', 'b', 'c']);
    // A null user or message is passed on as null.
    await a.connection.invoke('SendMessage', null, null);
    await eventually(() => messages(b).some(([user, text]) => user === null && text === null), 'the null message');
  });

  test('SendOthers skips the caller', async () => {
    expect(await whoGets((tag) => a.connection.invoke('SendOthers', 'routed', tag))).toEqual(['b', 'c']);
  });

  test('SendAllExcept skips the listed connections', async () => {
    expect(await whoGets((tag) => a.connection.invoke('SendAllExcept', [id(b), id(c)], 'routed', tag))).toEqual(['a']);
  });

  test('SendToConnection and SendToConnections', async () => {
    expect(await whoGets((tag) => a.connection.invoke('SendToConnection', id(c), 'routed', tag))).toEqual(['c']);
    expect(
      await whoGets((tag) => a.connection.invoke('SendToConnections', [id(a), id(b), id(b)], 'routed', tag)),
    ).toEqual(['a', 'b']);
    expect(
      await whoGets((tag) => a.connection.invoke('SendToConnection', 'no-such-connection', 'routed', tag)),
    ).toEqual([]);
  });

  test('JoinRoom, SendToRoom, LeaveRoom', async () => {
    expect(await a.connection.invoke('JoinRoom', 'red')).toBeNull();
    await b.connection.invoke('JoinRoom', 'red');
    expect(await whoGets((tag) => c.connection.invoke('SendToRoom', 'red', 'routed', tag))).toEqual(['a', 'b']);
    expect(await a.connection.invoke('LeaveRoom', 'red')).toBeNull();
    expect(await whoGets((tag) => c.connection.invoke('SendToRoom', 'red', 'routed', tag))).toEqual(['b']);
    // Group names are case-sensitive; leaving a group one is not in is no error.
    expect(await whoGets((tag) => c.connection.invoke('SendToRoom', 'RED', 'routed', tag))).toEqual([]);
    expect(await a.connection.invoke('LeaveRoom', 'never-joined')).toBeNull();
    await b.connection.invoke('LeaveRoom', 'red');
  });

  test('SendToRooms sends once per group a connection is in', async () => {
    await a.connection.invoke('JoinRoom', 'green');
    await a.connection.invoke('JoinRoom', 'blue');
    await c.connection.invoke('JoinRoom', 'blue');
    expect(await whoGets((tag) => b.connection.invoke('SendToRooms', ['green', 'blue'], 'routed', tag))).toEqual([
      'a',
      'a',
      'c',
    ]);
    for (const [client, room] of [
      [a, 'green'],
      [a, 'blue'],
      [c, 'blue'],
    ] as const)
      await client.connection.invoke('LeaveRoom', room);
  });

  test('SendRoomExcept and SendOthersInRoom', async () => {
    for (const client of [a, b, c]) await client.connection.invoke('JoinRoom', 'orange');
    expect(await whoGets((tag) => a.connection.invoke('SendRoomExcept', 'orange', [id(b)], 'routed', tag))).toEqual([
      'a',
      'c',
    ]);
    expect(await whoGets((tag) => a.connection.invoke('SendOthersInRoom', 'orange', 'routed', tag))).toEqual([
      'b',
      'c',
    ]);
    for (const client of [a, b, c]) await client.connection.invoke('LeaveRoom', 'orange');
  });

  test('SendToUser and SendToUsers reach every connection of those users, once each', async () => {
    expect(await whoGets((tag) => b.connection.invoke('SendToUser', 'alice', 'routed', tag))).toEqual(['a', 'c']);
    expect(await whoGets((tag) => b.connection.invoke('SendToUser', 'Alice', 'routed', tag))).toEqual([]);
    expect(
      await whoGets((tag) => a.connection.invoke('SendToUsers', ['alice', 'bob', 'alice'], 'routed', tag)),
    ).toEqual(['a', 'b', 'c']);
    expect(await whoGets((tag) => a.connection.invoke('SendToUsers', [], 'routed', tag))).toEqual([]);
  });

  test('AddToRoom and RemoveFromRoom manage another connection', async () => {
    expect(await a.connection.invoke('AddToRoom', id(b), 'purple')).toBeNull();
    expect(await whoGets((tag) => c.connection.invoke('SendToRoom', 'purple', 'routed', tag))).toEqual(['b']);
    expect(await a.connection.invoke('RemoveFromRoom', id(b), 'purple')).toBeNull();
    expect(await whoGets((tag) => c.connection.invoke('SendToRoom', 'purple', 'routed', tag))).toEqual([]);
    // An unknown connection id is no error.
    expect(await a.connection.invoke('AddToRoom', 'no-such-connection', 'purple')).toBeNull();
  });

  test("AskClient gets the client result of another connection, or .NET's errors", async () => {
    expect(await a.connection.invoke('AskClient', id(b))).toBe("bob's answer to question");
    expect(await errorOf(a.connection.invoke('AskClient', id(c)))).toBe(
      "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
    );
    expect(await errorOf(a.connection.invoke('AskClient', 'no-such-connection'))).toBe(
      "An unexpected error occurred invoking 'AskClient' on the server.",
    );
  });

  test('AskClient of the caller itself works with one invocation slot', async () => {
    expect(await b.connection.invoke('AskClient', id(b))).toBe("bob's answer to question");
  });

  test('GET /ask/:connectionId asks from outside any hub method', async () => {
    expect(await askFromOutside(server, id(b))).toEqual([200, "bob's answer to question"]);
    expect(await askFromOutside(server, id(c))).toEqual([200, "error: Client didn't provide a result."]);
    expect(await askFromOutside(server, 'no-such-connection')).toEqual([
      200,
      "error: Connection 'no-such-connection' does not exist.",
    ]);
  });

  test('Counter streams 0 … count-1, and stops when the client cancels', async () => {
    const collect = (count: number) =>
      new Promise<number[]>((resolve, reject) => {
        const items: number[] = [];
        a.connection
          .stream<number>('Counter', count, 0)
          .subscribe({ next: (item) => items.push(item), error: reject, complete: () => resolve(items) });
      });
    expect(await collect(5)).toEqual([0, 1, 2, 3, 4]);
    expect(await collect(0)).toEqual([]);

    const items: number[] = [];
    let ended = false;
    const subscription = a.connection.stream<number>('Counter', 1000, 20).subscribe({
      next: (item) => items.push(item),
      error: () => (ended = true),
      complete: () => (ended = true),
    });
    await eventually(() => items.length >= 2, 'two items');
    subscription.dispose();
    const seen = items.length;
    expect(await a.connection.invoke('Echo', 'after the cancel')).toBe('after the cancel');
    expect(items.length).toBe(seen);
    expect(ended).toBe(false);
  });

  test('Sum adds up a client-to-server stream', async () => {
    const numbers = new Subject<number>();
    const sum = a.connection.invoke<number>('Sum', numbers);
    for (const n of [1, 2, 3, 4, 5000000000]) numbers.next(n);
    numbers.complete();
    expect(await sum).toBe(5000000010);

    const failing = new Subject<number>();
    const failed = a.connection.invoke('Sum', failing);
    failing.error(new Error('upload broke'));
    expect(await errorOf(failed)).toBe(
      "An unexpected error occurred invoking 'Sum' on the server. HubException: upload broke",
    );
  });

  test('Fail: the HubException message reaches the caller', async () => {
    expect(await errorOf(a.connection.invoke('Fail', 'boom'))).toBe(
      "An unexpected error occurred invoking 'Fail' on the server. HubException: boom",
    );
  });

  test('Crash: an ordinary error stays on the server', async () => {
    expect(await errorOf(a.connection.invoke('Crash'))).toBe(
      "An unexpected error occurred invoking 'Crash' on the server.",
    );
  });

  test('WhoAmI is the user of the connection, or null without one', async () => {
    expect(await a.connection.invoke('WhoAmI')).toBe('alice');
    expect(await b.connection.invoke('WhoAmI')).toBe('bob');
    const anonymous = await connect(undefined);
    expect(await anonymous.connection.invoke('WhoAmI')).toBeNull();
    await anonymous.connection.stop();
  });

  test("SendValues reaches everyone with each kind of value in the protocol's own form", async () => {
    await c.connection.invoke('SendValues');
    const [[values]] = await Promise.all([a, b, c].map((client) => client.inbox('Values').waitFor(1)));
    const binaryAndDate =
      protocol === undefined
        ? ['AAH+/w==', '2020-01-02T03:04:05Z']
        : [new Uint8Array([0, 1, 254, 255]), new Date(Date.UTC(2020, 0, 2, 3, 4, 5))];
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
      ...binaryAndDate,
      { a: 1, b: [1, 2] },
    ]);
    for (const client of [b, c]) expect(client.inbox('Values').items[0]).toEqual(values);
  });
});
