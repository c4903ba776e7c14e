/**
 * `maximumParallelInvocationsPerClient` (docs/protocol.md §2.6) with the real @microsoft/signalr client: a client's
 * invocations wait their turn — in order, none dropped, however many it sends — while streaming invocations and stream
 * calls run beside them, as in ASP.NET Core.
 */
import { Subject, type IStreamResult } from '@microsoft/signalr';
import Fastify from 'fastify';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { clientStream, fastifySignalR, Hub } from '../../src';
import { ClientPool, eventually } from '../support/clients';
import { CLIENT_COMBINATIONS } from '../support/matrix';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, type RunningServer } from '../support/servers';

const RS = '\u001e';

/** What the hub saw, per connection, in order. */
const seen = new Map<string, string[]>();
function record(connectionId: string, event: string): void {
  let list = seen.get(connectionId);
  if (list === undefined) seen.set(connectionId, (list = []));
  list.push(event);
}

/** The `Held` invocations waiting for the test to let them finish, by connection id and tag. */
const gates = new Map<string, () => void>();

/** Lets the `Held` invocation `tag` of `connectionId` finish, once it has started. */
async function release(connectionId: string, tag: string): Promise<void> {
  const key = `${connectionId} ${tag}`;
  await eventually(() => gates.has(key), `'${tag}' to be held`);
  gates.get(key)!();
  gates.delete(key);
}

class LimitHub extends Hub {
  static override schemas = { total: [clientStream(z.number())] };

  /** Records `n` after a turn of the event loop, so every call really holds its slot for a while. */
  async step(n: number): Promise<number> {
    await nextTurn();
    record(this.context.connectionId, `step ${n}`);
    return n;
  }

  async slow(ms: number, tag: string): Promise<string> {
    record(this.context.connectionId, `start ${tag}`);
    await sleep(ms);
    record(this.context.connectionId, `end ${tag}`);
    return tag;
  }

  /** Holds its slot until the test calls `release(connectionId, tag)`. */
  async held(tag: string): Promise<string> {
    record(this.context.connectionId, `start ${tag}`);
    await new Promise<void>((resolve) => gates.set(`${this.context.connectionId} ${tag}`, resolve));
    record(this.context.connectionId, `end ${tag}`);
    return tag;
  }

  async *count(to: number): AsyncGenerator<number> {
    for (let i = 0; i < to; i++) {
      yield i;
      await sleep(5);
    }
  }

  async total(numbers: AsyncIterable<number>): Promise<number> {
    let sum = 0;
    for await (const n of numbers) sum += n;
    return sum;
  }

  echo(value: unknown): unknown {
    return value;
  }
}

function collect<T>(stream: IStreamResult<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.subscribe({ next: (item) => items.push(item), error: reject, complete: () => resolve(items) });
  });
}

async function startLimitServer(
  options: { maximumParallelInvocationsPerClient?: number; clientTimeoutIntervalMs?: number } = {},
) {
  const app = Fastify();
  await app.register(fastifySignalR, { ...options, hubs: [{ path: '/limits', hub: LimitHub }] });
  return listen(app, '/limits');
}

let oneAtATime: RunningServer;
let twoAtATime: RunningServer;

beforeAll(async () => {
  oneAtATime = await startLimitServer();
  twoAtATime = await startLimitServer({ maximumParallelInvocationsPerClient: 2 });
});
afterAll(async () => {
  await Promise.all([oneAtATime.close(), twoAtATime.close()]);
});

describe.each(CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => {
  const pool = new ClientPool(() => oneAtATime.hubUrl);
  const pairs = new ClientPool(() => twoAtATime.hubUrl);
  afterAll(async () => {
    await Promise.all([pool.stopAll(), pairs.stopAll()]);
  });
  const connect = async (clients = pool) => (await clients.connect({ transport, protocol }, [])).connection;

  test('a flood of invocations from one client (default limit 1): processed in order, none lost', async () => {
    const connection = await connect();
    const count = 3000;
    const results: Array<Promise<number>> = [];
    const sends: Array<Promise<void>> = [];
    for (let n = 0; n < count; n++) {
      // Every third one is fire-and-forget: no Completion, but it must run in its turn all the same.
      if (n % 3 === 2) sends.push(connection.send('Step', n));
      else results.push(connection.invoke<number>('Step', n));
    }
    await Promise.all(sends);
    const answers = await Promise.all(results);
    expect(answers).toEqual(Array.from({ length: count }, (_, n) => n).filter((n) => n % 3 !== 2));
    const id = connection.connectionId!;
    await eventually(() => (seen.get(id)?.length ?? 0) >= count, `${count} steps`);
    expect(seen.get(id)).toEqual(Array.from({ length: count }, (_, n) => `step ${n}`));
  }, 60_000);

  test('with the default limit, one invocation runs at a time', async () => {
    const connection = await connect();
    const results = await Promise.all([
      connection.invoke('Slow', 60, 'a'),
      connection.invoke('Slow', 10, 'b'),
      connection.invoke('Slow', 1, 'c'),
    ]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(seen.get(connection.connectionId!)).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  test('with a limit of 2, two run at once and the third waits for a free slot', async () => {
    const connection = await connect(pairs);
    const id = connection.connectionId!;
    // 'a' holds one slot until released; 'b' and then 'c' take turns in the other.
    const results = Promise.all([
      connection.invoke('Held', 'a'),
      connection.invoke('Slow', 30, 'b'),
      connection.invoke('Slow', 10, 'c'),
    ]);
    await eventually(() => seen.get(id)?.includes('end c') === true, "'c' to finish beside the held 'a'");
    expect(seen.get(id)).toEqual(['start a', 'start b', 'end b', 'start c', 'end c']);
    await release(id, 'a');
    expect(await results).toEqual(['a', 'b', 'c']);
    expect(seen.get(id)).toEqual(['start a', 'start b', 'end b', 'start c', 'end c', 'end a']);
  });

  test('a streaming invocation does not wait for the busy slot, nor hold it', async () => {
    const connection = await connect();
    const id = connection.connectionId!;
    const busy = connection.invoke('Held', 'busy');
    await eventually(() => seen.get(id)?.includes('start busy') === true, "'busy' to take the slot");
    // The stream runs to its end while the only slot is still taken.
    expect(await collect(connection.stream<number>('Count', 5))).toEqual([0, 1, 2, 3, 4]);
    expect(seen.get(id)).toEqual(['start busy']);
    await release(id, 'busy');
    expect(await busy).toBe('busy');
    // A long stream running beside plain invocations.
    const stream = collect(connection.stream<number>('Count', 40));
    expect(await connection.invoke('Echo', 'beside the stream')).toBe('beside the stream');
    expect(await stream).toHaveLength(40);
  });

  test('a method reading an upload does not hold the slot while it waits for items', async () => {
    const connection = await connect();
    const numbers = new Subject<number>();
    const total = connection.invoke<number>('Total', numbers);
    numbers.next(1);
    expect(await connection.invoke('Echo', 'not held up')).toBe('not held up');
    numbers.next(2);
    numbers.complete();
    expect(await total).toBe(3);
  });
});

describe('while an invocation waits for a slot', () => {
  test('a client that has sent everything and waits is not timed out for its silence', async () => {
    const server = await startLimitServer({ clientTimeoutIntervalMs: 500 });
    const socket = await RawWebSocket.connect(server.hubUrl);
    try {
      socket.send(`{"protocol":"json","version":1}${RS}`);
      await socket.frame(0);
      // The Ping arms the client timeout; Echo waits behind Slow, so the server reads nothing more meanwhile.
      socket.send(
        `{"type":6}${RS}{"type":1,"invocationId":"1","target":"Slow","arguments":[1500,"long"]}${RS}` +
          `{"type":1,"invocationId":"2","target":"Echo","arguments":["then me"]}${RS}`,
      );
      const records = () =>
        socket.frames
          .map((frame) => frame.text)
          .join('')
          .split(RS)
          .slice(1, -1)
          .filter((r) => r !== '{"type":6}');
      await eventually(() => records().length >= 2, `both completions, got ${socket.texts()}`, 4000);
      expect(records()).toEqual([
        '{"type":3,"invocationId":"1","result":"long"}',
        '{"type":3,"invocationId":"2","result":"then me"}',
      ]);
    } finally {
      socket.close();
      await server.close();
    }
  });
});
