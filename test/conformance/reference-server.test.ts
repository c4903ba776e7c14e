/**
 * The official @microsoft/signalr client against the real ASP.NET Core reference server
 * (`test/dotnet-reference`). These tests prove the reference hub implements its contract and record .NET's exact
 * answers (error texts, serialisation, routing) that fastify-signalr has to reproduce.
 */
import { HttpTransportType, HubConnectionBuilder, LogLevel, Subject, type HubConnection } from '@microsoft/signalr';
import WebSocket from 'ws';
import { describeWithDotnet, startReferenceServer, type ReferenceServer } from '../support/dotnet-reference';

const SETUP_TIMEOUT_MS = 180_000;
const RS = '\u001e';

const TRANSPORTS: ReadonlyArray<readonly [string, HttpTransportType]> = [
  ['WebSockets', HttpTransportType.WebSockets],
  ['ServerSentEvents', HttpTransportType.ServerSentEvents],
  ['LongPolling', HttpTransportType.LongPolling],
];

/** A connected client and everything the server sent it. */
interface Peer {
  readonly connection: HubConnection;
  readonly id: string;
  /** `ReceiveMessage(user, message)` calls, in order. */
  readonly messages: Array<[string, string]>;
  /** Argument lists of `Values(...)` calls. */
  readonly values: unknown[][];
  /** Questions this peer was asked through `GetAnswer`. */
  readonly questions: unknown[];
}

interface ConnectOptions {
  user?: string;
  /** `GetAnswer` handler; without one the client has no handler for it. */
  answer?: (question: unknown) => unknown;
}

const openConnections: HubConnection[] = [];

async function connect(
  server: ReferenceServer,
  transport: HttpTransportType,
  options: ConnectOptions = {},
): Promise<Peer> {
  const url = options.user === undefined ? server.hubUrl : `${server.hubUrl}?user=${encodeURIComponent(options.user)}`;
  const connection = new HubConnectionBuilder().withUrl(url, { transport }).configureLogging(LogLevel.None).build();
  const messages: Array<[string, string]> = [];
  const values: unknown[][] = [];
  const questions: unknown[] = [];
  connection.on('ReceiveMessage', (user: string, message: string) => {
    messages.push([user, message]);
  });
  connection.on('Values', (...args: unknown[]) => {
    values.push(args);
  });
  const answer = options.answer;
  if (answer) {
    connection.on('GetAnswer', (question: unknown) => {
      questions.push(question);
      return answer(question);
    });
  }
  openConnections.push(connection);
  await connection.start();
  if (!connection.connectionId) throw new Error('connected without a connection id');
  return { connection, id: connection.connectionId, messages, values, questions };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Collects every item of a server-to-client stream. */
function collect<T>(connection: HubConnection, method: string, ...args: unknown[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    connection.stream<T>(method, ...args).subscribe({
      next: (item) => items.push(item),
      error: (error: unknown) => reject(error),
      complete: () => resolve(items),
    });
  });
}

/** The message of a rejected promise (the text the client surfaces). */
async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a rejection');
}

async function negotiate(
  server: ReferenceServer,
): Promise<{ connectionId: string; connectionToken: string } & Record<string, unknown>> {
  const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
  expect(response.status).toBe(200);
  return (await response.json()) as { connectionId: string; connectionToken: string } & Record<string, unknown>;
}

/** Resolves the calls in parallel and returns their labels in the order they completed. */
async function completionOrder(calls: Array<[string, Promise<unknown>]>): Promise<string[]> {
  const order: string[] = [];
  await Promise.all(calls.map(([label, call]) => call.then(() => order.push(label))));
  return order;
}

/** A peer whose `GetAnswer` takes `delayMs`, to hold a hub method (AskClient) busy. */
function slowAnswer(delayMs: number): ConnectOptions {
  return {
    answer: async () => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return 'slow answer';
    },
  };
}

/** A raw WebSocket hub connection, to see the exact text the server writes. */
class RawSocket {
  private text = '';
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: WebSocket.RawData) => {
      this.text += data.toString();
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
    });
  }

  static async open(server: ReferenceServer): Promise<RawSocket> {
    const { connectionToken } = await negotiate(server);
    const socket = new WebSocket(`${server.hubUrl.replace(/^http/, 'ws')}?id=${connectionToken}`);
    const raw = new RawSocket(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return raw;
  }

  send(...frames: string[]): void {
    this.socket.send(frames.map((frame) => frame + RS).join(''));
  }

  /** Complete records received so far (without separators). */
  records(): string[] {
    return this.text.split(RS).slice(0, -1);
  }

  async waitForRecords(count: number, timeoutMs = 5_000): Promise<string[]> {
    await waitFor(
      () => this.records().length >= count,
      `${count} records (have ${JSON.stringify(this.text)})`,
      timeoutMs,
    );
    return this.records();
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.close();
    await closed;
  }
}

const rawSockets: RawSocket[] = [];
let server: ReferenceServer;

describeWithDotnet('the ASP.NET Core reference server', () => {
  beforeAll(async () => {
    server = await startReferenceServer();
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.allSettled(openConnections.map((connection) => connection.stop()));
    await Promise.allSettled(rawSockets.map((raw) => raw.close()));
    await server?.stop();
  }, 30_000);

  describe.each(TRANSPORTS)('ChatHub over %s', (_name, transport) => {
    let peer: Peer;

    beforeAll(async () => {
      peer = await connect(server, transport, { answer: (question) => `answer to ${String(question)}` });
    });

    test('Echo returns any JSON value unchanged', async () => {
      const samples: unknown[] = [
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
      for (const value of samples) {
        expect(await peer.connection.invoke('Echo', value)).toEqual(value);
      }
    });

    test('SendMessage reaches the caller; a void method completes with null', async () => {
      const result: unknown = await peer.connection.invoke('SendMessage', 'me', `hello over ${_name}`);
      expect(result).toBeNull();
      await waitFor(() => peer.messages.some(([, m]) => m === `hello over ${_name}`), 'own ReceiveMessage');
      expect(peer.messages).toContainEqual(['me', `hello over ${_name}`]);
    });

    test('Counter streams 0 … count-1 and completes', async () => {
      expect(await collect<number>(peer.connection, 'Counter', 5, 10)).toEqual([0, 1, 2, 3, 4]);
      expect(await collect<number>(peer.connection, 'Counter', 0, 0)).toEqual([]);
    });

    test('Counter stops when the client disposes the subscription', async () => {
      const items: number[] = [];
      let ended = false;
      const subscription = peer.connection.stream<number>('Counter', 1000, 20).subscribe({
        next: (item) => items.push(item),
        error: () => (ended = true),
        complete: () => (ended = true),
      });
      await waitFor(() => items.length >= 3, 'three stream items');
      subscription.dispose();
      const seen = items.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(items.length).toBe(seen);
      expect(ended).toBe(false);
      expect(items.slice(0, 3)).toEqual([0, 1, 2]);
      // The connection is still usable after the cancel.
      expect(await peer.connection.invoke('Echo', 'still here')).toBe('still here');
    });

    test('Sum adds up a client-to-server stream (Subject)', async () => {
      const numbers = new Subject<number>();
      const sum = peer.connection.invoke<number>('Sum', numbers);
      for (const n of [1, 2, 3, 4, 5000000000]) numbers.next(n);
      numbers.complete();
      expect(await sum).toBe(5000000010);

      const empty = new Subject<number>();
      const zero = peer.connection.invoke<number>('Sum', empty);
      empty.complete();
      expect(await zero).toBe(0);
    });

    test('Sum is not a streaming method: stream() with an upload stream is refused', async () => {
      const numbers = new Subject<number>();
      const result = collect<number>(peer.connection, 'Sum', numbers);
      numbers.next(20);
      numbers.next(22);
      numbers.complete();
      await expect(result).rejects.toThrow(
        "The client attempted to invoke the non-streaming 'Sum' method with a streaming invocation.",
      );
    });

    test('a client-side error on the upload stream reaches the hub as a HubException', async () => {
      const numbers = new Subject<number>();
      const sum = peer.connection.invoke<number>('Sum', numbers);
      numbers.next(1);
      numbers.error(new Error('upload broke'));
      expect(await errorOf(sum)).toBe(
        "An unexpected error occurred invoking 'Sum' on the server. HubException: upload broke",
      );
    });

    test('Fail: the HubException message reaches the client', async () => {
      expect(await errorOf(peer.connection.invoke('Fail', 'boom'))).toBe(
        "An unexpected error occurred invoking 'Fail' on the server. HubException: boom",
      );
    });

    test('Crash: an ordinary exception is hidden without detailed errors', async () => {
      const message = await errorOf(peer.connection.invoke('Crash'));
      expect(message).toBe("An unexpected error occurred invoking 'Crash' on the server.");
      expect(message).not.toContain('secret detail');
    });

    test('WhoAmI is null without ?user=', async () => {
      expect(await peer.connection.invoke('WhoAmI')).toBeNull();
    });

    test('WhoAmI is the ?user= query parameter', async () => {
      const alice = await connect(server, transport, { user: 'alice' });
      expect(await alice.connection.invoke('WhoAmI')).toBe('alice');
      await alice.connection.stop();
    });

    test('SendValues: numbers, bool, null, text, byte[] as base64, DateTime as ISO, a dictionary', async () => {
      await peer.connection.invoke('SendValues');
      await waitFor(() => peer.values.length > 0, 'Values');
      expect(peer.values[0]).toEqual([
        42,
        -1,
        300,
        70000,
        5000000000,
        3.5,
        true,
        null,
        'héllo ✓',
        'AAH+/w==',
        '2020-01-02T03:04:05Z',
        { a: 1, b: [1, 2] },
      ]);
    });

    test('AskClient on the caller itself gets the client result (default MaximumParallelInvocationsPerClient = 1)', async () => {
      expect(await peer.connection.invoke('AskClient', peer.id)).toBe('answer to question');
      expect(peer.questions.at(-1)).toBe('question');
    });

    test('GET /ask/:id gets a client result through IHubContext', async () => {
      const response = await fetch(`${server.url}/ask/${encodeURIComponent(peer.id)}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('answer to question');
    });
  });

  describe('routing between connections of all three transports', () => {
    let a: Peer; // WebSockets, user alice
    let b: Peer; // ServerSentEvents, user bob
    let c: Peer; // LongPolling, user alice
    let d: Peer; // WebSockets, no user
    const names = new Map<Peer, string>();
    let counter = 0;

    beforeAll(async () => {
      const answer = (question: unknown): string => `long-polling answer to ${String(question)}`;
      [a, b, c, d] = await Promise.all([
        connect(server, HttpTransportType.WebSockets, { user: 'alice' }),
        connect(server, HttpTransportType.ServerSentEvents, { user: 'bob' }),
        connect(server, HttpTransportType.LongPolling, { user: 'alice', answer }),
        connect(server, HttpTransportType.WebSockets),
      ]);
      names.set(a, 'a').set(b, 'b').set(c, 'c').set(d, 'd');
    });

    afterAll(async () => {
      await Promise.allSettled([a, b, c, d].map((peer) => peer?.connection.stop()));
    });

    /**
     * Runs `send(tag)` (which should route `ReceiveMessage('routed', tag)`), then broadcasts a barrier and returns
     * the names of the peers that got the routed message, once per delivery. Messages on one connection stay in
     * order, so once every peer has the barrier, every routed message has arrived.
     */
    async function whoGets(send: (tag: string) => Promise<unknown>): Promise<string[]> {
      const tag = `m${++counter}`;
      await send(tag);
      await a.connection.invoke('SendMessage', 'barrier', tag);
      const peers = [a, b, c, d];
      await waitFor(
        () => peers.every((p) => p.messages.some(([u, m]) => u === 'barrier' && m === tag)),
        `barrier ${tag}`,
      );
      return peers.flatMap((p) =>
        p.messages.filter(([u, m]) => u === 'routed' && m === tag).map(() => names.get(p) as string),
      );
    }

    test('SendMessage reaches everyone', async () => {
      expect(await whoGets((tag) => b.connection.invoke('SendMessage', 'routed', tag))).toEqual(['a', 'b', 'c', 'd']);
    });

    test('SendOthers skips the caller', async () => {
      expect(await whoGets((tag) => a.connection.invoke('SendOthers', 'routed', tag))).toEqual(['b', 'c', 'd']);
    });

    test('SendAllExcept skips the listed connections', async () => {
      expect(await whoGets((tag) => a.connection.invoke('SendAllExcept', [b.id, c.id], 'routed', tag))).toEqual([
        'a',
        'd',
      ]);
    });

    test('SendToConnection and SendToConnections', async () => {
      expect(await whoGets((tag) => a.connection.invoke('SendToConnection', c.id, 'routed', tag))).toEqual(['c']);
      expect(await whoGets((tag) => a.connection.invoke('SendToConnections', [b.id, d.id], 'routed', tag))).toEqual([
        'b',
        'd',
      ]);
      // Listing a connection twice delivers once.
      expect(await whoGets((tag) => a.connection.invoke('SendToConnections', [b.id, b.id], 'routed', tag))).toEqual([
        'b',
      ]);
      // An unknown id is no error.
      expect(
        await whoGets((tag) => a.connection.invoke('SendToConnection', 'no-such-connection', 'routed', tag)),
      ).toEqual([]);
    });

    test('groups: JoinRoom, SendToRoom, SendToRooms, SendRoomExcept, SendOthersInRoom, LeaveRoom', async () => {
      await a.connection.invoke('JoinRoom', 'red');
      await b.connection.invoke('JoinRoom', 'red');
      await c.connection.invoke('JoinRoom', 'blue');

      expect(await whoGets((tag) => d.connection.invoke('SendToRoom', 'red', 'routed', tag))).toEqual(['a', 'b']);
      expect(await whoGets((tag) => d.connection.invoke('SendToRooms', ['red', 'blue'], 'routed', tag))).toEqual([
        'a',
        'b',
        'c',
      ]);
      expect(await whoGets((tag) => d.connection.invoke('SendRoomExcept', 'red', [a.id], 'routed', tag))).toEqual([
        'b',
      ]);
      expect(await whoGets((tag) => a.connection.invoke('SendOthersInRoom', 'red', 'routed', tag))).toEqual(['b']);
      // The caller need not be in the group to send to it.
      expect(await whoGets((tag) => d.connection.invoke('SendToRoom', 'empty-room', 'routed', tag))).toEqual([]);

      // Joining twice is harmless; a connection in two of the listed groups gets the message once per group.
      await a.connection.invoke('JoinRoom', 'red');
      await a.connection.invoke('JoinRoom', 'blue');
      expect(await whoGets((tag) => d.connection.invoke('SendToRoom', 'red', 'routed', tag))).toEqual(['a', 'b']);
      expect(await whoGets((tag) => d.connection.invoke('SendToRooms', ['red', 'blue'], 'routed', tag))).toEqual([
        'a',
        'a',
        'b',
        'c',
      ]);

      await a.connection.invoke('LeaveRoom', 'red');
      await a.connection.invoke('LeaveRoom', 'blue');
      expect(await whoGets((tag) => d.connection.invoke('SendToRoom', 'red', 'routed', tag))).toEqual(['b']);
      // Leaving a group one is not in is harmless.
      expect(await a.connection.invoke('LeaveRoom', 'never-joined')).toBeNull();
      // Group names are case-sensitive.
      expect(await whoGets((tag) => d.connection.invoke('SendToRoom', 'RED', 'routed', tag))).toEqual([]);

      await b.connection.invoke('LeaveRoom', 'red');
      await c.connection.invoke('LeaveRoom', 'blue');
    });

    test('AddToRoom / RemoveFromRoom manage another connection', async () => {
      await a.connection.invoke('AddToRoom', d.id, 'green');
      await a.connection.invoke('AddToRoom', c.id, 'green');
      expect(await whoGets((tag) => b.connection.invoke('SendToRoom', 'green', 'routed', tag))).toEqual(['c', 'd']);
      await a.connection.invoke('RemoveFromRoom', d.id, 'green');
      expect(await whoGets((tag) => b.connection.invoke('SendToRoom', 'green', 'routed', tag))).toEqual(['c']);
      await a.connection.invoke('RemoveFromRoom', c.id, 'green');
      // An unknown connection id is silently ignored.
      expect(await a.connection.invoke('AddToRoom', 'no-such-connection', 'green')).toBeNull();
      expect(await a.connection.invoke('RemoveFromRoom', 'no-such-connection', 'green')).toBeNull();
      expect(await whoGets((tag) => b.connection.invoke('SendToRoom', 'green', 'routed', tag))).toEqual([]);
    });

    test('SendToUser reaches every connection of that user', async () => {
      expect(await whoGets((tag) => d.connection.invoke('SendToUser', 'alice', 'routed', tag))).toEqual(['a', 'c']);
      expect(await whoGets((tag) => d.connection.invoke('SendToUser', 'bob', 'routed', tag))).toEqual(['b']);
      expect(await whoGets((tag) => d.connection.invoke('SendToUser', 'nobody', 'routed', tag))).toEqual([]);
      // User ids are case-sensitive.
      expect(await whoGets((tag) => d.connection.invoke('SendToUser', 'Alice', 'routed', tag))).toEqual([]);
    });

    test('SendToUsers reaches every connection of those users, once each', async () => {
      expect(await whoGets((tag) => d.connection.invoke('SendToUsers', ['alice', 'bob'], 'routed', tag))).toEqual([
        'a',
        'b',
        'c',
      ]);
      expect(await whoGets((tag) => d.connection.invoke('SendToUsers', ['alice', 'alice'], 'routed', tag))).toEqual([
        'a',
        'c',
      ]);
      expect(await whoGets((tag) => d.connection.invoke('SendToUsers', [], 'routed', tag))).toEqual([]);
    });

    test('WhoAmI per connection', async () => {
      expect(await Promise.all([a, b, c, d].map((p) => p.connection.invoke('WhoAmI')))).toEqual([
        'alice',
        'bob',
        'alice',
        null,
      ]);
    });

    test('AskClient asks another connection (here a long-polling one) for a client result', async () => {
      expect(await a.connection.invoke('AskClient', c.id)).toBe('long-polling answer to question');
      expect(c.questions).toEqual(['question']);
    });
  });

  describe('client results: failures', () => {
    let asker: Peer;
    let noHandler: Peer;
    let throwing: Peer;
    let undefinedResult: Peer;
    let asyncHandler: Peer;

    beforeAll(async () => {
      [asker, noHandler, throwing, undefinedResult, asyncHandler] = await Promise.all([
        connect(server, HttpTransportType.WebSockets),
        connect(server, HttpTransportType.WebSockets),
        connect(server, HttpTransportType.WebSockets, {
          answer: () => {
            throw new Error('nope');
          },
        }),
        connect(server, HttpTransportType.WebSockets, { answer: () => undefined }),
        connect(server, HttpTransportType.ServerSentEvents, {
          answer: async (question) => {
            await new Promise((resolve) => setTimeout(resolve, 50));
            return `later: ${String(question)}`;
          },
        }),
      ]);
    });

    afterAll(async () => {
      await Promise.allSettled(
        [asker, noHandler, throwing, undefinedResult, asyncHandler].map((p) => p?.connection.stop()),
      );
    });

    const ask = (id: string): Promise<unknown> => asker.connection.invoke('AskClient', id);
    const askHttp = async (id: string): Promise<[number, string]> => {
      const response = await fetch(`${server.url}/ask/${encodeURIComponent(id)}`);
      return [response.status, await response.text()];
    };

    test('an async handler result is awaited', async () => {
      expect(await ask(asyncHandler.id)).toBe('later: question');
      expect(await askHttp(asyncHandler.id)).toEqual([200, 'later: question']);
    });

    test('no GetAnswer handler: "Client didn\'t provide a result."', async () => {
      expect(await errorOf(ask(noHandler.id))).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
      );
      expect(await askHttp(noHandler.id)).toEqual([200, "error: Client didn't provide a result."]);
    });

    test('a handler that returns undefined counts as no result', async () => {
      expect(await errorOf(ask(undefinedResult.id))).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
      );
    });

    test('a handler that throws: the client sends "Error: <message>"', async () => {
      expect(await errorOf(ask(throwing.id))).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Error: nope",
      );
      expect(await askHttp(throwing.id)).toEqual([200, 'error: Error: nope']);
    });

    test('an unknown connection id: IOException, hidden from the hub caller', async () => {
      expect(await errorOf(ask('no-such-connection'))).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server.",
      );
      expect(await askHttp('no-such-connection')).toEqual([
        200,
        "error: Connection 'no-such-connection' does not exist.",
      ]);
    });
  });

  describe('dispatch errors (default options)', () => {
    let peer: Peer;

    beforeAll(async () => {
      peer = await connect(server, HttpTransportType.WebSockets);
    });

    afterAll(async () => {
      await peer?.connection.stop();
    });

    test('an unknown method', async () => {
      expect(await errorOf(peer.connection.invoke('NoSuchMethod'))).toBe(
        "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
      );
    });

    test('method names are matched case-insensitively', async () => {
      expect(await peer.connection.invoke('echo', 7)).toBe(7);
      expect(await peer.connection.invoke('ECHO', 'x')).toBe('x');
    });

    test('wrong argument count or types: no detail', async () => {
      expect(await errorOf(peer.connection.invoke('Echo'))).toBe(
        "Failed to invoke 'Echo' due to an error on the server.",
      );
      expect(await errorOf(peer.connection.invoke('Echo', 1, 2))).toBe(
        "Failed to invoke 'Echo' due to an error on the server.",
      );
      expect(await errorOf(peer.connection.invoke('SendToRoom', 1, 2, 3))).toBe(
        "Failed to invoke 'SendToRoom' due to an error on the server.",
      );
    });

    test('streaming and non-streaming invocations of the wrong kind', async () => {
      expect(await errorOf(peer.connection.invoke('Counter', 1, 1))).toBe(
        "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.",
      );
      expect(await errorOf(collect(peer.connection, 'Echo', 1))).toBe(
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
      );
    });

    test('the connection survives all of the above', async () => {
      expect(await peer.connection.invoke('Echo', { ok: true })).toEqual({ ok: true });
    });
  });

  describe('raw wire text (WebSockets)', () => {
    test('negotiate (version 1) offers all three transports', async () => {
      const body = await negotiate(server);
      expect(Object.keys(body)).toEqual(['negotiateVersion', 'connectionId', 'connectionToken', 'availableTransports']);
      expect(body.negotiateVersion).toBe(1);
      expect(body.connectionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(body.connectionToken).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(body.availableTransports).toEqual([
        { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
        { transport: 'ServerSentEvents', transferFormats: ['Text'] },
        { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
      ]);
    });

    test('handshake, a broadcast, completions: exact JSON text (UTF-8 and HTML characters unescaped)', async () => {
      const raw = await RawSocket.open(server);
      rawSockets.push(raw);
      raw.send('{"protocol":"json","version":1}');
      expect(await raw.waitForRecords(1)).toEqual(['{}']);
      raw.send(
        '{"type":1,"invocationId":"1","target":"SendValues","arguments":[]}',
        '{"type":1,"invocationId":"2","target":"Echo","arguments":["héllo ✓ <a&b> \'q\' \\"dq\\" \\u0001"]}',
        '{"type":1,"invocationId":"3","target":"Echo","arguments":[{"Zeta":1,"alpha":[1.0,2.50,1e3]}]}',
        '{"type":1,"target":"Fail","arguments":["nobody hears this"]}',
        '{"type":1,"invocationId":"4","target":"Fail","arguments":["boom"]}',
      );
      const records = await raw.waitForRecords(6);
      expect(records.slice(1)).toEqual([
        '{"type":1,"target":"Values","arguments":[42,-1,300,70000,5000000000,3.5,true,null,"héllo ✓","AAH+/w==","2020-01-02T03:04:05Z",{"a":1,"b":[1,2]}]}',
        '{"type":3,"invocationId":"1","result":null}',
        '{"type":3,"invocationId":"2","result":"héllo ✓ <a&b> \'q\' \\"dq\\" \\u0001"}',
        // A JsonElement is written back as it came in: key order, case and number spelling are kept.
        '{"type":3,"invocationId":"3","result":{"Zeta":1,"alpha":[1.0,2.50,1e3]}}',
        '{"type":3,"invocationId":"4","error":"An unexpected error occurred invoking \'Fail\' on the server. HubException: boom"}',
      ]);
      await raw.close();
    });

    test('streams: items then a completion without result; an upload stream; CancelInvocation', async () => {
      const raw = await RawSocket.open(server);
      rawSockets.push(raw);
      raw.send('{"protocol":"json","version":1}');
      await raw.waitForRecords(1);
      raw.send('{"type":4,"invocationId":"s1","target":"Counter","arguments":[3,0]}');
      expect((await raw.waitForRecords(5)).slice(1)).toEqual([
        '{"type":2,"invocationId":"s1","item":0}',
        '{"type":2,"invocationId":"s1","item":1}',
        '{"type":2,"invocationId":"s1","item":2}',
        '{"type":3,"invocationId":"s1"}',
      ]);
      raw.send(
        '{"type":1,"invocationId":"u1","target":"Sum","arguments":[],"streamIds":["up"]}',
        '{"type":2,"invocationId":"up","item":40}',
        '{"type":2,"invocationId":"up","item":2}',
        '{"type":3,"invocationId":"up"}',
      );
      expect((await raw.waitForRecords(6)).slice(5)).toEqual(['{"type":3,"invocationId":"u1","result":42}']);

      raw.send('{"type":4,"invocationId":"s2","target":"Counter","arguments":[1000,30]}');
      await raw.waitForRecords(8);
      // CancelInvocation ends the stream with a plain completion (no error), and nothing follows it.
      raw.send('{"type":5,"invocationId":"s2"}');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const afterCancel = raw.records().slice(6);
      expect(afterCancel.at(-1)).toBe('{"type":3,"invocationId":"s2"}');
      expect(
        afterCancel.slice(0, -1).every((record) => record.startsWith('{"type":2,"invocationId":"s2","item":')),
      ).toBe(true);
      await raw.close();
    });
  });

  describe('options from the environment', () => {
    let configured: ReferenceServer;

    beforeAll(async () => {
      configured = await startReferenceServer({
        DETAILED_ERRORS: 'true',
        MAX_MESSAGE_SIZE: '1024',
        TRANSPORTS: 'WebSockets,LongPolling',
        CORS_ORIGINS: 'http://example.test',
        KEEP_ALIVE_MS: '300',
        HANDSHAKE_TIMEOUT_MS: '500',
      });
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      await configured?.stop();
    });

    test('DETAILED_ERRORS=true appends the exception type and message', async () => {
      const peer = await connect(configured, HttpTransportType.WebSockets);
      expect(await errorOf(peer.connection.invoke('Crash'))).toBe(
        "An unexpected error occurred invoking 'Crash' on the server. InvalidOperationException: Crash() failed with a secret detail",
      );
      expect(await errorOf(peer.connection.invoke('Echo'))).toBe(
        "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides 0 argument(s) but target expects 1.",
      );
      expect(await errorOf(peer.connection.invoke('Counter', 'x', 1))).toBe(
        "Failed to invoke 'Counter' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
      );
      expect(await errorOf(peer.connection.invoke('AskClient', 'no-such-connection'))).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. IOException: Connection 'no-such-connection' does not exist.",
      );
      await peer.connection.stop();
    });

    test('MAX_MESSAGE_SIZE: a larger message closes the connection with an error', async () => {
      const peer = await connect(configured, HttpTransportType.WebSockets);
      let closeError: Error | undefined;
      const closed = new Promise<void>((resolve) =>
        peer.connection.onclose((error) => {
          closeError = error;
          resolve();
        }),
      );
      expect(await peer.connection.invoke('Echo', 'x'.repeat(900))).toHaveLength(900);
      const expected =
        'Server returned an error on close: Connection closed with an error. InvalidDataException: The maximum message size of 1024B was exceeded. The message size can be configured in AddHubOptions.';
      expect(await errorOf(peer.connection.invoke('Echo', 'x'.repeat(2000)))).toBe(expected);
      await closed;
      expect(closeError?.message).toBe(expected);
    });

    test('TRANSPORTS limits negotiate', async () => {
      const body = await negotiate(configured);
      expect(body.availableTransports).toEqual([
        { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
        { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
      ]);
      const sse = new HubConnectionBuilder()
        .withUrl(configured.hubUrl, { transport: HttpTransportType.ServerSentEvents })
        .configureLogging(LogLevel.None)
        .build();
      openConnections.push(sse);
      expect(await errorOf(sse.start())).toBe(
        "Unable to connect to the server with any of the available transports. WebSockets failed: Error: 'WebSockets' is disabled by the client. LongPolling failed: Error: 'LongPolling' is disabled by the client.",
      );
    });

    test('CORS_ORIGINS: allowed origins are echoed with credentials, others get no CORS headers', async () => {
      const preflight = (origin: string): Promise<Response> =>
        fetch(`${configured.hubUrl}/negotiate?negotiateVersion=1`, {
          method: 'OPTIONS',
          headers: {
            Origin: origin,
            'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'x-requested-with,x-signalr-user-agent',
          },
        });
      const allowed = await preflight('http://example.test');
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://example.test');
      expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
      expect(allowed.headers.get('access-control-allow-methods')).toBe('POST');
      expect(allowed.headers.get('access-control-allow-headers')).toBe('x-requested-with,x-signalr-user-agent');
      const refused = await preflight('http://elsewhere.test');
      expect(refused.status).toBe(204);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      // Without CORS_ORIGINS there is no CORS at all.
      const none = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
        method: 'OPTIONS',
        headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' },
      });
      expect(none.headers.get('access-control-allow-origin')).toBeNull();
    });

    test("KEEP_ALIVE_MS: pings come on the server's 1 s heartbeat", async () => {
      const raw = await RawSocket.open(configured);
      rawSockets.push(raw);
      raw.send('{"protocol":"json","version":1}');
      await raw.waitForRecords(1);
      const started = Date.now();
      expect((await raw.waitForRecords(3, 4_000)).slice(1)).toEqual(['{"type":6}', '{"type":6}']);
      // Two pings need at least one heartbeat tick between them, however short the interval.
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      await raw.close();
    });

    test('HANDSHAKE_TIMEOUT_MS: no handshake → an error record, then a normal close', async () => {
      const raw = await RawSocket.open(configured);
      rawSockets.push(raw);
      const started = Date.now();
      await waitFor(() => raw.closed !== undefined, 'the server to close', 5_000);
      expect(raw.records()).toEqual(['{"error":"Handshake was canceled."}']);
      expect(raw.closed).toEqual({ code: 1000, reason: '' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    });
  });

  describe('client results: scheduling', () => {
    test('a hub method awaiting a client result frees its invocation slot: a later Echo overtakes it (default MaximumParallelInvocationsPerClient = 1)', async () => {
      const peer = await connect(server, HttpTransportType.WebSockets, slowAnswer(300));
      const order = await completionOrder([
        ['AskClient', peer.connection.invoke('AskClient', peer.id)],
        ['Echo', peer.connection.invoke('Echo', 1)],
      ]);
      expect(order).toEqual(['Echo', 'AskClient']);
      await peer.connection.stop();
    });
  });

  describe('more options from the environment', () => {
    let configured: ReferenceServer;

    beforeAll(async () => {
      configured = await startReferenceServer({
        ALLOW_STATEFUL_RECONNECTS: 'true',
        LONG_POLL_TIMEOUT_MS: '500',
        CORS_ORIGINS: '*',
        CLIENT_TIMEOUT_MS: '1000',
        DISCONNECT_TIMEOUT_MS: '1000',
        MAX_PARALLEL_INVOCATIONS: '2',
        STREAM_BUFFER_CAPACITY: '2',
      });
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      await configured?.stop();
    });

    test('ALLOW_STATEFUL_RECONNECTS: negotiate answers useStatefulReconnect (first key) when the client asks', async () => {
      const response = await fetch(`${configured.hubUrl}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, {
        method: 'POST',
      });
      const body = (await response.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual([
        'useStatefulReconnect',
        'negotiateVersion',
        'connectionId',
        'connectionToken',
        'availableTransports',
      ]);
      expect(body.useStatefulReconnect).toBe(true);
      // Not without the query parameter, and never on a server that does not allow it.
      expect(Object.keys(await negotiate(configured))).not.toContain('useStatefulReconnect');
      const plain = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, {
        method: 'POST',
      });
      expect(Object.keys((await plain.json()) as object)).not.toContain('useStatefulReconnect');

      const connection = new HubConnectionBuilder()
        .withUrl(configured.hubUrl, { transport: HttpTransportType.WebSockets })
        .withStatefulReconnect()
        .configureLogging(LogLevel.None)
        .build();
      openConnections.push(connection);
      await connection.start();
      expect(await connection.invoke('Echo', 'stateful')).toBe('stateful');
      await connection.stop();
    });

    test('CORS_ORIGINS=*: any origin is echoed, with credentials', async () => {
      const response = await fetch(`${configured.hubUrl}/negotiate?negotiateVersion=1`, {
        method: 'OPTIONS',
        headers: { Origin: 'http://anywhere.test', 'Access-Control-Request-Method': 'POST' },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('http://anywhere.test');
      expect(response.headers.get('access-control-allow-credentials')).toBe('true');
      expect(response.headers.get('vary')).toBe('Origin');
    });

    test('LONG_POLL_TIMEOUT_MS and DISCONNECT_TIMEOUT_MS over raw long polling', async () => {
      const { connectionToken } = await negotiate(configured);
      const url = `${configured.hubUrl}?id=${encodeURIComponent(connectionToken)}`;
      // The first poll returns at once and empty: it only establishes the transport.
      let response = await fetch(url);
      expect([response.status, await response.text()]).toEqual([200, '']);
      response = await fetch(url, { method: 'POST', body: `{"protocol":"json","version":1}${RS}` });
      expect([response.status, await response.text()]).toEqual([200, '']);
      response = await fetch(url);
      expect([response.status, await response.text()]).toEqual([200, `{}${RS}`]);
      // Nothing to send: the poll ends empty after the poll timeout.
      let started = Date.now();
      response = await fetch(url);
      expect([response.status, await response.text()]).toEqual([200, '']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      // No poll for longer than the disconnect timeout (plus the 1 s heartbeat): the connection is gone.
      started = Date.now();
      await waitFor(() => Date.now() - started > 3_500, 'the disconnect timeout', 5_000);
      response = await fetch(url);
      expect([response.status, await response.text()]).toEqual([404, 'No Connection with that ID']);
    });

    test("CLIENT_TIMEOUT_MS: applies only after the client's first ping; then a close with error", async () => {
      const pinging = await RawSocket.open(configured);
      const silent = await RawSocket.open(configured);
      rawSockets.push(pinging, silent);
      pinging.send('{"protocol":"json","version":1}', '{"type":6}');
      silent.send('{"protocol":"json","version":1}');
      const started = Date.now();
      await waitFor(() => pinging.closed !== undefined, 'the client timeout', 4_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(pinging.records()).toEqual([
        '{}',
        '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}',
      ]);
      expect(pinging.closed).toEqual({ code: 1000, reason: '' });
      // The one that never pinged is still open.
      expect(silent.closed).toBeUndefined();
      expect(silent.records()).toEqual(['{}']);
      await silent.close();
    });

    test('STREAM_BUFFER_CAPACITY=2, MAX_PARALLEL_INVOCATIONS=2: an upload of many items still sums correctly', async () => {
      const peer = await connect(configured, HttpTransportType.LongPolling);
      const numbers = new Subject<number>();
      const sum = peer.connection.invoke<number>('Sum', numbers);
      for (let i = 1; i <= 200; i++) numbers.next(i);
      numbers.complete();
      expect(await sum).toBe(20100);
      await peer.connection.stop();
    });
  });
});
