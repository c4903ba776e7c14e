/**
 * Streams in both directions with the real @microsoft/signalr client (docs/protocol.md §2.6, §2.9): the chat sample's
 * `Counter` and `Sum` (the contract the ASP.NET Core reference server implements), and a lab hub that lets the tests
 * watch the server side — producers stopping when a client cancels, uploads ending, a stalled consumer holding
 * back a fast client without the server's memory growing. Texts are the ones the reference server answers.
 */
import { HttpTransportType, Subject, type IStreamResult } from '@microsoft/signalr';
import Fastify from 'fastify';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { clientStream, fastifySignalR, Hub, HubException } from '../../src';
import { ClientPool, delay, eventually } from '../support/clients';
import { CLIENT_COMBINATIONS } from '../support/matrix';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';

/** Collects a server-to-client stream: every item, then the completion (or the error). */
function collect<T>(stream: IStreamResult<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.subscribe({ next: (item) => items.push(item), error: reject, complete: () => resolve(items) });
  });
}

/** The message of a rejection; fails when the promise resolves. */
async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a rejection');
}

/** A promise with its resolver, to hold a hub method until a test lets it go on. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

// ---------------------------------------------------------------------------------------------------------------
// The lab hub: what its methods see on the server is recorded in `events`.

const events: string[] = [];
const gates = new Map<string, Promise<void>>();
const stash = new Map<string, AsyncIterable<unknown>>();

/** A schema whose transform throws on 'bad': an application bug that must not take the connection down. */
const fragile = z.string().transform((text) => {
  if (text === 'bad') throw new Error('transform failed');
  return text.toUpperCase();
});

class StreamLabHub extends Hub {
  static override schemas = {
    hoard: [z.string(), clientStream(z.string())],
    firstTwo: [clientStream()],
    keep: [z.string(), clientStream()],
    watch: [z.string(), clientStream()],
    doubled: [clientStream(z.number())],
    slowSum: [z.number(), clientStream(z.number())],
    fragile: [clientStream(fragile)],
  };
  static override streamingMethods = ['fromArray', 'fromReadable', 'later', 'nothing', 'notIterable', 'brokenStart'];

  /** Yields 0, 1, 2, … every 20 ms until cancelled; records what it observed when it stops. */
  async *ticks(tag: string): AsyncGenerator<number> {
    let produced = 0;
    try {
      while (true) {
        yield produced++;
        events.push(`${tag} produced ${produced}`);
        await sleep(20, undefined, { signal: this.abortSignal });
      }
    } finally {
      events.push(`${tag} stopped after ${produced}, aborted: ${this.abortSignal.aborted}`);
    }
  }

  /** Yields `count` items, then throws. */
  async *failAfter(count: number, asHubException: boolean): AsyncGenerator<number> {
    for (let i = 0; i < count; i++) yield i;
    throw asHubException ? new HubException('gone wrong') : new Error('a secret detail');
  }

  /** A synchronous generator streams too. */
  *letters(word: string): Generator<string> {
    yield* word;
  }

  /** A declared streaming method returning an array. */
  fromArray(count: number): number[] {
    return Array.from({ length: count }, (_, i) => i * 10);
  }

  /** A declared streaming method returning a web `ReadableStream`. */
  fromReadable(): ReadableStream<string> {
    return new ReadableStream({
      start(controller) {
        for (const chunk of ['a', 'b', 'c']) controller.enqueue(chunk);
        controller.close();
      },
    });
  }

  /** A declared streaming method resolving to an async iterable. */
  async later(): Promise<AsyncIterable<string>> {
    await sleep(10);
    return (async function* () {
      yield 'after a wait';
    })();
  }

  nothing(): null {
    return null;
  }

  notIterable(): number {
    return 42;
  }

  /** A declared streaming method that throws before returning a stream. */
  brokenStart(): Iterable<number> {
    throw new Error('never started');
  }

  /** Server-to-client stream of an upload, doubled: both directions at once. */
  async *doubled(numbers: AsyncIterable<number>): AsyncGenerator<number> {
    for await (const n of numbers) yield n * 2;
  }

  /** A consumer that does not read until its gate opens, then reads everything. */
  async hoard(tag: string, items: AsyncIterable<string>): Promise<{ count: number; bytes: number }> {
    await gates.get(tag);
    let count = 0;
    let bytes = 0;
    for await (const item of items) {
      count++;
      bytes += item.length;
    }
    return { count, bytes };
  }

  /** A consumer that waits `delayMs` before each item. */
  async slowSum(delayMs: number, numbers: AsyncIterable<number>): Promise<number[]> {
    const seen: number[] = [];
    for await (const n of numbers) {
      if (delayMs > 0) await sleep(delayMs);
      seen.push(n);
    }
    return seen;
  }

  /** Reads two items and returns while the upload goes on. */
  async firstTwo(items: AsyncIterable<unknown>): Promise<unknown[]> {
    const taken: unknown[] = [];
    for await (const item of items) {
      taken.push(item);
      if (taken.length === 2) break;
    }
    return taken;
  }

  /** Keeps the upload for the test to read after the method returned, which it does when its gate opens. */
  async keep(tag: string, items: AsyncIterable<unknown>): Promise<string> {
    stash.set(tag, items);
    await gates.get(tag);
    return 'kept';
  }

  /** Reads an upload to its end and records how it ended. */
  async watch(tag: string, items: AsyncIterable<unknown>): Promise<void> {
    const seen: unknown[] = [];
    try {
      for await (const item of items) seen.push(item);
      events.push(`${tag} ended after ${JSON.stringify(seen)}`);
    } catch (error) {
      events.push(`${tag} failed after ${JSON.stringify(seen)}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }

  /** Collects an upload whose item schema throws on 'bad'. */
  async fragile(items: AsyncIterable<string>): Promise<string[]> {
    const read: string[] = [];
    for await (const item of items) read.push(item);
    return read;
  }

  echo(value: unknown): unknown {
    return value;
  }
}

// ---------------------------------------------------------------------------------------------------------------

let chat: RunningServer;
let chatDetailed: RunningServer;
let lab: RunningServer;
/** Every TCP socket the lab server accepted, to see how much it read. */
const labSockets: Socket[] = [];

beforeAll(async () => {
  chat = await startChatServer();
  chatDetailed = await startChatServer({ enableDetailedErrors: true });
  const app = Fastify();
  await app.register(fastifySignalR, { hubs: [{ path: '/lab', hub: StreamLabHub }] });
  app.server.on('connection', (socket: Socket) => labSockets.push(socket));
  lab = await listen(app, '/lab');
});
afterAll(async () => {
  await Promise.all([chat.close(), chatDetailed.close(), lab.close()]);
});

describe.each(CLIENT_COMBINATIONS)('$name', ({ name, transport, protocol }) => {
  const chatClients = new ClientPool(() => chat.hubUrl);
  const detailedClients = new ClientPool(() => chatDetailed.hubUrl);
  const labClients = new ClientPool(() => lab.hubUrl);
  const connectChat = async () => (await chatClients.connect({ transport, protocol }, [])).connection;
  const connectLab = async () => (await labClients.connect({ transport, protocol }, [])).connection;

  afterAll(async () => {
    await Promise.all([chatClients.stopAll(), detailedClients.stopAll(), labClients.stopAll()]);
  });

  describe('server-to-client streams', () => {
    test('Counter: every item in order, then the completion', async () => {
      const connection = await connectChat();
      expect(await collect(connection.stream<number>('Counter', 5, 10))).toEqual([0, 1, 2, 3, 4]);
      expect(await collect(connection.stream<number>('Counter', 0, 0))).toEqual([]);
      const many = await collect(connection.stream<number>('Counter', 3000, 0));
      expect(many).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    });

    test('two streams of one connection interleave, each in order', async () => {
      const connection = await connectChat();
      const [a, b] = await Promise.all([
        collect(connection.stream<number>('Counter', 20, 1)),
        collect(connection.stream<number>('Counter', 30, 0)),
      ]);
      expect(a).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(b).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    test('Counter stops when the client disposes the subscription; the connection stays usable', async () => {
      const connection = await connectChat();
      const items: number[] = [];
      let ended = false;
      const subscription = connection.stream<number>('Counter', 1000, 20).subscribe({
        next: (item) => items.push(item),
        error: () => (ended = true),
        complete: () => (ended = true),
      });
      await eventually(() => items.length >= 3, 'three items');
      subscription.dispose();
      const seen = items.length;
      await delay(200);
      expect(items.length).toBe(seen);
      expect(ended).toBe(false);
      expect(items.slice(0, 3)).toEqual([0, 1, 2]);
      expect(await connection.invoke('Echo', 'still here')).toBe('still here');
    });

    test('disposing stops the producer on the server: its abortSignal aborts and its finally runs', async () => {
      const connection = await connectLab();
      const tag = `dispose-${name}`;
      const items: number[] = [];
      const subscription = connection.stream<number>('Ticks', tag).subscribe({
        next: (item) => items.push(item),
        error: () => undefined,
        complete: () => undefined,
      });
      await eventually(() => items.length >= 3, 'three items');
      subscription.dispose();
      await eventually(() => events.some((event) => event.startsWith(`${tag} stopped`)), 'the producer to stop', 1000);
      const stopped = events.find((event) => event.startsWith(`${tag} stopped`))!;
      expect(stopped).toMatch(/aborted: true$/);
      // Nothing is produced after it stopped.
      const produced = events.filter((event) => event.startsWith(`${tag} produced`)).length;
      await delay(100);
      expect(events.filter((event) => event.startsWith(`${tag} produced`)).length).toBe(produced);
    });

    test('the producer stops when the connection goes away', async () => {
      const connection = await connectLab();
      const tag = `drop-${name}`;
      const items: number[] = [];
      connection
        .stream<number>('Ticks', tag)
        .subscribe({ next: (item) => items.push(item), error: () => undefined, complete: () => undefined });
      await eventually(() => items.length >= 2, 'two items');
      await connection.stop();
      await eventually(() => events.some((event) => event.startsWith(`${tag} stopped`)), 'the producer to stop', 1000);
      expect(events.find((event) => event.startsWith(`${tag} stopped`))).toMatch(/aborted: true$/);
    });

    test("an error while streaming: items so far, then .NET's error text (detail only for HubException or detailed errors)", async () => {
      const connection = await connectLab();
      const items: number[] = [];
      const hubError = new Promise<string>((resolve) =>
        connection.stream<number>('FailAfter', 2, true).subscribe({
          next: (item) => items.push(item),
          error: (error) => resolve(error.message),
          complete: () => resolve('completed'),
        }),
      );
      expect(await hubError).toBe('An error occurred on the server while streaming results. HubException: gone wrong');
      expect(items).toEqual([0, 1]);
      expect(await errorOf(collect(connection.stream('FailAfter', 0, false)))).toBe(
        'An error occurred on the server while streaming results.',
      );
      const chatConnection = await connectChat();
      expect(await errorOf(collect(chatConnection.stream('Counter', 3, -5)))).toBe(
        'An error occurred on the server while streaming results.',
      );
      const verbose = (await detailedClients.connect({ transport, protocol }, [])).connection;
      expect(await errorOf(collect(verbose.stream('Counter', 3, -5)))).toBe(
        'An error occurred on the server while streaming results. RangeError: The delay must be -1 (infinite), 0 or positive; got -5.',
      );
    });

    test('a method that fails before it streams, or returns no stream', async () => {
      const connection = await connectLab();
      // Failing to start is a failed invocation, not a failed stream
      // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 StreamAsync).
      expect(await errorOf(collect(connection.stream('BrokenStart')))).toBe(
        "An unexpected error occurred invoking 'BrokenStart' on the server.",
      );
      expect(await errorOf(collect(connection.stream('Nothing')))).toBe(
        "The value returned by the streaming method 'nothing' is not a ChannelReader<> or IAsyncEnumerable<>.",
      );
      expect(await errorOf(collect(connection.stream('NotIterable')))).toBe(
        "The value returned by the streaming method 'notIterable' is not a ChannelReader<> or IAsyncEnumerable<>.",
      );
    });

    test('generators, arrays, ReadableStreams and promised iterables all stream', async () => {
      const connection = await connectLab();
      expect(await collect(connection.stream('Letters', 'abc'))).toEqual(['a', 'b', 'c']);
      expect(await collect(connection.stream('FromArray', 3))).toEqual([0, 10, 20]);
      expect(await collect(connection.stream('FromReadable'))).toEqual(['a', 'b', 'c']);
      expect(await collect(connection.stream('Later'))).toEqual(['after a wait']);
    });

    test("the wrong kind of invocation gets .NET's error; a fire-and-forget one gets nothing", async () => {
      const connection = await connectChat();
      expect(await errorOf(connection.invoke('Counter', 1, 1))).toBe(
        "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.",
      );
      expect(await errorOf(collect(connection.stream('Echo', 1)))).toBe(
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
      );
      await connection.send('Counter', 3, 0);
      expect(await errorOf(collect(connection.stream('NoSuchMethod')))).toBe(
        "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
      );
      expect(await errorOf(collect(connection.stream('Counter', 'x', 1)))).toBe(
        "Failed to invoke 'Counter' due to an error on the server.",
      );
      expect(await connection.invoke('Echo', 'fine')).toBe('fine');
    });
  });

  describe('client-to-server streams', () => {
    test('Sum adds up an upload (a Subject), including values beyond 2^32', async () => {
      const connection = await connectChat();
      const numbers = new Subject<number>();
      const sum = connection.invoke<number>('Sum', numbers);
      for (const n of [1, 2, 3, 4, 5000000000]) numbers.next(n);
      numbers.complete();
      expect(await sum).toBe(5000000010);

      const empty = new Subject<number>();
      const zero = connection.invoke<number>('Sum', empty);
      empty.complete();
      expect(await zero).toBe(0);
    });

    test('a large upload arrives whole and in order', async () => {
      const connection = await connectLab();
      const numbers = new Subject<number>();
      const seen = connection.invoke<number[]>('SlowSum', 0, numbers);
      for (let i = 0; i < 2000; i++) numbers.next(i);
      numbers.complete();
      expect(await seen).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    });

    test('a client error on the upload reaches the method as a HubException', async () => {
      const connection = await connectChat();
      const numbers = new Subject<number>();
      const sum = connection.invoke<number>('Sum', numbers);
      numbers.next(1);
      numbers.error(new Error('upload broke'));
      expect(await errorOf(sum)).toBe(
        "An unexpected error occurred invoking 'Sum' on the server. HubException: upload broke",
      );
    });

    test("an item of the wrong type ends the upload with .NET's binding error", async () => {
      const connection = await connectChat();
      const numbers = new Subject<unknown>();
      const sum = connection.invoke<number>('Sum', numbers);
      numbers.next(1);
      numbers.next('two');
      numbers.next(3);
      numbers.complete();
      expect(await errorOf(sum)).toBe(
        "An unexpected error occurred invoking 'Sum' on the server. HubException: Failed to bind Stream message.",
      );
    });

    test('an item schema that throws rejects the item like any bad item; the connection goes on', async () => {
      const connection = await connectLab();
      const good = new Subject<string>();
      const read = connection.invoke('Fragile', good);
      good.next('fine');
      good.complete();
      expect(await read).toEqual(['FINE']);
      const bad = new Subject<string>();
      const failed = connection.invoke('Fragile', bad);
      bad.next('bad');
      bad.complete();
      expect(await errorOf(failed)).toBe(
        "An unexpected error occurred invoking 'Fragile' on the server. HubException: Failed to bind Stream message.",
      );
      expect(await connection.invoke('Echo', 'usable')).toBe('usable');
    });

    test('stream() of a method that takes an upload is refused as non-streaming', async () => {
      const connection = await connectChat();
      const numbers = new Subject<number>();
      const result = collect(connection.stream<number>('Sum', numbers));
      numbers.next(20);
      numbers.complete();
      expect(await errorOf(result)).toBe(
        "The client attempted to invoke the non-streaming 'Sum' method with a streaming invocation.",
      );
    });

    test('an upload and a result stream at once', async () => {
      const connection = await connectLab();
      const numbers = new Subject<number>();
      const doubled = collect(connection.stream<number>('Doubled', numbers));
      for (const n of [1, 2, 3]) numbers.next(n);
      numbers.complete();
      expect(await doubled).toEqual([2, 4, 6]);
    });

    test('a method that returns before the upload ends: the server ends the upload, the client notices nothing', async () => {
      const connection = await connectLab();
      const items = new Subject<string>();
      const result = connection.invoke('FirstTwo', items);
      for (const item of ['a', 'b', 'c', 'd']) items.next(item);
      expect(await result).toEqual(['a', 'b']);
      items.next('after the method returned');
      items.complete();
      expect(await connection.invoke('Echo', 'usable')).toBe('usable');
    });

    test('an upload still open when its method returns is ended: what was buffered stays readable, then it ends', async () => {
      const connection = await connectLab();
      const tag = `keep-${name}`;
      const held = gate();
      gates.set(tag, held.promise);
      const items = new Subject<string>();
      const result = connection.invoke('Keep', tag, items);
      for (const item of ['a', 'b', 'c']) items.next(item);
      await eventually(() => stash.has(tag), 'the method to start');
      await delay(100);
      held.open();
      expect(await result).toBe('kept');
      items.next('after the method returned');
      // The client never completes this upload: without the server ending it, reading it would never finish.
      const read: unknown[] = [];
      for await (const item of stash.get(tag)!) read.push(item);
      expect(read).toEqual(['a', 'b', 'c']);
      expect(await connection.invoke('Echo', 'usable')).toBe('usable');
    });

    test('an upload open when the connection goes away ends with OperationCanceledException', async () => {
      const connection = await connectLab();
      const tag = `watch-drop-${name}`;
      const items = new Subject<number>();
      void connection.invoke('Watch', tag, items).catch(() => undefined);
      items.next(1);
      items.next(2);
      await delay(50);
      await connection.stop();
      await eventually(() => events.some((event) => event.startsWith(`${tag} `)), 'the upload to end', 2000);
      expect(events.find((event) => event.startsWith(`${tag} `))).toBe(
        `${tag} failed after [1,2]: OperationCanceledException: The underlying connection was closed.`,
      );
    });

    test('a slow consumer gets every item in order', async () => {
      const connection = await connectLab();
      const numbers = new Subject<number>();
      const seen = connection.invoke<number[]>('SlowSum', 2, numbers);
      for (let i = 0; i < 150; i++) numbers.next(i);
      numbers.complete();
      expect(await seen).toEqual(Array.from({ length: 150 }, (_, i) => i));
    });

    test('a stalled consumer: the server stops reading from the client, so its memory stays bounded; nothing is lost', async () => {
      const tag = `stall-${name}`;
      const held = gate();
      gates.set(tag, held.promise);
      // Everything the server reads from now on, on whatever sockets (an HTTP transport uses several).
      const totalRead = () => labSockets.reduce((total, socket) => total + socket.bytesRead, 0);
      const baseline = totalRead();
      const connection = await connectLab();
      const items = new Subject<string>();
      const result = connection.invoke<{ count: number; bytes: number }>('Hoard', tag, items);
      const item = 'x'.repeat(1024);
      // 16 MiB of items over WebSockets; 2 MiB over long polling, whose one-POST-at-a-time pace makes the release
      // slow — still four times the bound the test asserts.
      const count = transport === HttpTransportType.LongPolling ? 2 * 1024 : 16 * 1024;
      for (let i = 0; i < count; i++) {
        items.next(item);
        // Batches of 64 KiB, so an HTTP transport's client sends them in several requests rather than one.
        if (i % 64 === 63) await delay(0);
      }
      items.complete();
      await delay(1500);
      const bytesRead = () => totalRead() - baseline;
      const readWhileStalled = bytesRead();
      // Bound: 10 buffered items + 64 KiB of held input + what the transport had already read when it paused.
      expect(readWhileStalled).toBeLessThan(512 * 1024);
      await delay(300);
      expect(bytesRead()).toBe(readWhileStalled);
      held.open();
      expect(await result).toEqual({ count, bytes: count * item.length });
      expect(bytesRead()).toBeGreaterThan(count * item.length);
    }, 60_000);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Exact bytes, as the reference server writes them (JSON over WebSockets; raw peers).

describe('on the wire (JSON, raw WebSocket)', () => {
  const sockets: RawWebSocket[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  async function open(target: RunningServer = chat): Promise<RawWebSocket> {
    const socket = await RawWebSocket.connect(target.hubUrl);
    sockets.push(socket);
    socket.send(`{"protocol":"json","version":1}${RS}`);
    await socket.frame(0);
    return socket;
  }

  function records(socket: RawWebSocket): string[] {
    return socket.frames
      .map((frame) => frame.text)
      .join('')
      .split(RS)
      .slice(1, -1);
  }

  async function recordsAfter(socket: RawWebSocket, count: number, timeoutMs = 5000): Promise<string[]> {
    await eventually(() => records(socket).length >= count, `${count} records, got ${socket.texts()}`, timeoutMs);
    return records(socket);
  }

  function send(socket: RawWebSocket, ...messages: string[]): void {
    socket.send(messages.map((message) => message + RS).join(''));
  }

  test('a stream: items, then a Completion with neither result nor error', async () => {
    const socket = await open();
    send(socket, '{"type":4,"invocationId":"s1","target":"Counter","arguments":[3,0]}');
    expect(await recordsAfter(socket, 4)).toEqual([
      '{"type":2,"invocationId":"s1","item":0}',
      '{"type":2,"invocationId":"s1","item":1}',
      '{"type":2,"invocationId":"s1","item":2}',
      '{"type":3,"invocationId":"s1"}',
    ]);
  });

  test("an upload: items and the end arrive by stream id; the method's Completion carries the result", async () => {
    const socket = await open();
    send(
      socket,
      '{"type":1,"invocationId":"u1","target":"Sum","arguments":[],"streamIds":["up"]}',
      '{"type":2,"invocationId":"up","item":40}',
      '{"type":2,"invocationId":"up","item":2}',
      '{"type":3,"invocationId":"up"}',
    );
    expect(await recordsAfter(socket, 1)).toEqual(['{"type":3,"invocationId":"u1","result":42}']);
  });

  test('an upload Completion carrying a result ends the stream normally, as in .NET', async () => {
    const socket = await open();
    send(
      socket,
      '{"type":1,"invocationId":"k1","target":"Sum","arguments":[],"streamIds":["k"]}',
      '{"type":2,"invocationId":"k","item":7}',
      '{"type":3,"invocationId":"k","result":5}',
    );
    expect(await recordsAfter(socket, 1)).toEqual(['{"type":3,"invocationId":"k1","result":7}']);
  });

  test('CancelInvocation ends the stream with a plain Completion, and nothing follows it', async () => {
    const socket = await open();
    send(socket, '{"type":4,"invocationId":"s2","target":"Counter","arguments":[1000,30]}');
    await recordsAfter(socket, 2);
    send(socket, '{"type":5,"invocationId":"s2"}');
    await delay(300);
    const all = records(socket);
    expect(all.at(-1)).toBe('{"type":3,"invocationId":"s2"}');
    expect(all.slice(0, -1).every((record) => record.startsWith('{"type":2,"invocationId":"s2","item":'))).toBe(true);
  });

  test('a second stream with an id in use is refused; the first goes on and can still be cancelled', async () => {
    const socket = await open();
    send(socket, '{"type":4,"invocationId":"d1","target":"Counter","arguments":[1000,20]}');
    await recordsAfter(socket, 1);
    send(socket, '{"type":4,"invocationId":"d1","target":"Counter","arguments":[2,0]}');
    await eventually(
      () =>
        records(socket).includes('{"type":3,"invocationId":"d1","error":"Invocation ID \'d1\' is already in use."}'),
      'the refusal',
    );
    const itemsBefore = records(socket).length;
    await recordsAfter(socket, itemsBefore + 2);
    send(socket, '{"type":5,"invocationId":"d1"}');
    await delay(200);
    const all = records(socket);
    expect(all.at(-1)).toBe('{"type":3,"invocationId":"d1"}');
    // The first stream's items went on in order after the refusal.
    const items = all
      .filter((record) => record.startsWith('{"type":2'))
      .map((record) => (JSON.parse(record) as { item: number }).item);
    expect(items).toEqual(Array.from({ length: items.length }, (_, i) => i));
  });

  test('stream counts that do not match the method, and arguments that do not bind', async () => {
    const socket = await open();
    send(
      socket,
      '{"type":1,"invocationId":"b1","target":"Sum","arguments":[]}',
      '{"type":1,"invocationId":"b2","target":"Sum","arguments":[],"streamIds":["p","q"]}',
      '{"type":1,"invocationId":"b3","target":"Echo","arguments":[1],"streamIds":["r"]}',
      '{"type":4,"invocationId":"b4","target":"Counter","arguments":[1,0],"streamIds":["w"]}',
      '{"type":1,"invocationId":"c1","target":"Sum","arguments":[5],"streamIds":["s"]}',
      '{"type":4,"invocationId":"f2","target":"Counter","arguments":[3]}',
      '{"type":1,"invocationId":"f4","target":"Counter","arguments":[3]}',
      '{"type":1,"target":"Counter","arguments":[3,0]}',
      '{"type":1,"invocationId":"e1","target":"Echo","arguments":["after"]}',
    );
    expect(await recordsAfter(socket, 8)).toEqual([
      '{"type":3,"invocationId":"b1","error":"An unexpected error occurred invoking \'Sum\' on the server. HubException: Client sent 0 stream(s), Hub method expects 1."}',
      '{"type":3,"invocationId":"b2","error":"An unexpected error occurred invoking \'Sum\' on the server. HubException: Client sent 2 stream(s), Hub method expects 1."}',
      '{"type":3,"invocationId":"b3","error":"An unexpected error occurred invoking \'Echo\' on the server. HubException: Client sent 1 stream(s), Hub method expects 0."}',
      '{"type":3,"invocationId":"b4","error":"An unexpected error occurred invoking \'Counter\' on the server. HubException: Client sent 1 stream(s), Hub method expects 0."}',
      '{"type":3,"invocationId":"c1","error":"Failed to invoke \'Sum\' due to an error on the server."}',
      '{"type":3,"invocationId":"f2","error":"Failed to invoke \'Counter\' due to an error on the server."}',
      '{"type":3,"invocationId":"f4","error":"Failed to invoke \'Counter\' due to an error on the server."}',
      '{"type":3,"invocationId":"e1","result":"after"}',
    ]);
  });

  test('with detailed errors, binding failures say why', async () => {
    const socket = await open(chatDetailed);
    send(
      socket,
      '{"type":1,"invocationId":"c1","target":"Sum","arguments":[5],"streamIds":["s"]}',
      '{"type":4,"invocationId":"f2","target":"Counter","arguments":[3]}',
    );
    expect(await recordsAfter(socket, 2)).toEqual([
      '{"type":3,"invocationId":"c1","error":"Failed to invoke \'Sum\' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 0."}',
      '{"type":3,"invocationId":"f2","error":"Failed to invoke \'Counter\' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2."}',
    ]);
  });

  test('items, completions and cancels for unknown ids are ignored', async () => {
    const socket = await open();
    send(
      socket,
      '{"type":2,"invocationId":"zz","item":1}',
      '{"type":3,"invocationId":"zz"}',
      '{"type":5,"invocationId":"zz"}',
      '{"type":1,"invocationId":"h1","target":"Echo","arguments":["alive"]}',
      '{"type":5,"invocationId":"h1"}',
    );
    expect(await recordsAfter(socket, 1)).toEqual(['{"type":3,"invocationId":"h1","result":"alive"}']);
    await delay(100);
    expect(records(socket)).toHaveLength(1);
  });

  test('a pending upload does not hold up other invocations (it takes no invocation slot)', async () => {
    const socket = await open();
    send(
      socket,
      '{"type":1,"invocationId":"i1","target":"Sum","arguments":[],"streamIds":["u"]}',
      '{"type":2,"invocationId":"u","item":1}',
      '{"type":1,"invocationId":"i2","target":"Echo","arguments":["first"]}',
    );
    expect(await recordsAfter(socket, 1)).toEqual(['{"type":3,"invocationId":"i2","result":"first"}']);
    send(socket, '{"type":3,"invocationId":"u"}');
    expect((await recordsAfter(socket, 2))[1]).toBe('{"type":3,"invocationId":"i1","result":1}');
  });

  test('a stream id may equal an invocation id: they are separate', async () => {
    const socket = await open();
    send(
      socket,
      '{"type":4,"invocationId":"q1","target":"Counter","arguments":[2,0]}',
      '{"type":1,"invocationId":"q1","target":"Echo","arguments":["same id"]}',
    );
    const all = await recordsAfter(socket, 4);
    expect(all).toContain('{"type":3,"invocationId":"q1","result":"same id"}');
    expect(all.filter((record) => record !== '{"type":3,"invocationId":"q1","result":"same id"}')).toEqual([
      '{"type":2,"invocationId":"q1","item":0}',
      '{"type":2,"invocationId":"q1","item":1}',
      '{"type":3,"invocationId":"q1"}',
    ]);
  });
});
