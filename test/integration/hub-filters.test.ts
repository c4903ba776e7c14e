/**
 * Hub filters (`hubFilters`, ASP.NET Core's `IHubFilter`) with the real official client: order (plugin-wide
 * first, then the hub's own, each wrapping the next), changed arguments, short-circuits, errors as the caller
 * sees them, streams, client-to-server streams, the lifecycle hooks, and authorization before any filter.
 */
import { HttpTransportType, Subject } from '@microsoft/signalr';
import Fastify from 'fastify';
import { z } from 'zod';
import { clientStream, fastifySignalR, Hub, HubException, type HubFilter, type HubInvocationContext } from '../../src';
import { ClientPool, eventually } from '../support/clients';
import { listen, type RunningServer } from '../support/servers';

const events: string[] = [];

class FilteredHub extends Hub {
  static override schemas = { sum: [clientStream(z.number())] };
  static override authorize = { secret: () => false };

  echo(text: string) {
    events.push(`echo(${text})`);
    return text;
  }
  add(a: number, b: number) {
    return a + b;
  }
  async *count(to: number) {
    for (let i = 1; i <= to; i++) yield i;
  }
  async sum(numbers: AsyncIterable<number>) {
    let total = 0;
    for await (const n of numbers) total += n;
    return total;
  }
  secret() {
    events.push('secret ran');
    return 'nobody sees this';
  }
  override onConnected() {
    events.push(`hub connected ${this.context.connectionId}`);
  }
  override onDisconnected() {
    events.push(`hub disconnected ${this.context.connectionId}`);
  }
}

/** Records entering and leaving; the plugin-wide filter. */
const outer: HubFilter = {
  async invokeMethod(invocation, next) {
    events.push(`outer before ${invocation.methodName}(${invocation.arguments.join(',')})`);
    try {
      const result = await next(invocation);
      events.push(`outer after ${String(result)}`);
      return result;
    } catch (error) {
      events.push(`outer saw ${(error as Error).message}`);
      throw error;
    }
  },
  async onConnected(lifetime, next) {
    events.push(`outer connected ${lifetime.context.connectionId}`);
    await next(lifetime);
  },
  async onDisconnected(lifetime, error, next) {
    events.push(`outer disconnected ${lifetime.context.connectionId} ${error === undefined ? 'clean' : 'error'}`);
    await next(lifetime, error);
  },
};

/** The hub's own filter: rewrites, refuses, answers by itself. */
const inner: HubFilter = {
  invokeMethod(invocation, next) {
    events.push(`inner before ${invocation.methodName}`);
    if (invocation.methodName === 'echo' && invocation.arguments[0] === 'darn') {
      // A language filter, as in .NET's documentation: the method gets the cleaned argument.
      const cleaned: HubInvocationContext = { ...invocation, arguments: ['***'] };
      return next(cleaned);
    }
    if (invocation.methodName === 'echo' && invocation.arguments[0] === 'refuse')
      throw new HubException('Refused by a filter.');
    if (invocation.methodName === 'echo' && invocation.arguments[0] === 'crash')
      throw new Error('secret filter detail');
    if (invocation.methodName === 'add' && invocation.arguments[0] === 0) return 'answered by the filter';
    return next(invocation);
  },
};

let server: RunningServer;
const pool = new ClientPool(() => server.hubUrl);
beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubFilters: [outer],
    hubs: [{ path: '/filtered', hub: FilteredHub, hubFilters: [inner] }],
  });
  server = await listen(app, '/filtered');
});
afterAll(async () => {
  await pool.stopAll();
  await server.close();
});
beforeEach(() => {
  events.length = 0;
});

describe.each([
  ['WebSockets', HttpTransportType.WebSockets],
  ['LongPolling', HttpTransportType.LongPolling],
])('over %s', (_name, transport) => {
  test('the plugin-wide filter wraps the hub filter, which wraps the method', async () => {
    const { connection } = await pool.connect({ transport }, []);
    events.length = 0;
    expect(await connection.invoke('Echo', 'hello')).toBe('hello');
    expect(events).toEqual(['outer before echo(hello)', 'inner before echo', 'echo(hello)', 'outer after hello']);
  });

  test('a filter can change the arguments the method gets', async () => {
    const { connection } = await pool.connect({ transport }, []);
    expect(await connection.invoke('Echo', 'darn')).toBe('***');
    expect(events).toContain('echo(***)');
  });

  test('a filter can answer without running the method', async () => {
    const { connection } = await pool.connect({ transport }, []);
    expect(await connection.invoke('Add', 0, 5)).toBe('answered by the filter');
    expect(await connection.invoke('Add', 2, 5)).toBe(7);
  });

  test('a HubException from a filter reaches the caller; the method does not run', async () => {
    const { connection } = await pool.connect({ transport }, []);
    await expect(connection.invoke('Echo', 'refuse')).rejects.toThrow(
      /^An unexpected error occurred invoking 'Echo' on the server\. HubException: Refused by a filter\.$/,
    );
    expect(events).not.toContain('echo(refuse)');
    expect(events).toContain('outer saw Refused by a filter.');
  });

  test("any other error from a filter gets .NET's generic text, without its detail", async () => {
    const { connection } = await pool.connect({ transport }, []);
    await expect(connection.invoke('Echo', 'crash')).rejects.toThrow(
      /^An unexpected error occurred invoking 'Echo' on the server\.$/,
    );
    // The connection carries on.
    expect(await connection.invoke('Echo', 'still here')).toBe('still here');
  });

  test('a streaming method streams every item through its filters', async () => {
    const { connection } = await pool.connect({ transport }, []);
    events.length = 0;
    const items: unknown[] = [];
    await new Promise<void>((resolve, reject) =>
      connection.stream('Count', 3).subscribe({ next: (item) => items.push(item), complete: resolve, error: reject }),
    );
    expect(items).toEqual([1, 2, 3]);
    expect(events.slice(0, 2)).toEqual(['outer before count(3)', 'inner before count']);
  });

  test('a method with a client-to-server stream gets the stream through its filters', async () => {
    const { connection } = await pool.connect({ transport }, []);
    const subject = new Subject<number>();
    const total = connection.invoke('Sum', subject);
    for (const n of [1, 2, 3, 4]) subject.next(n);
    subject.complete();
    expect(await total).toBe(10);
    expect(events).toContain('outer after 10');
  });

  test('an unauthorized call is refused before any filter runs', async () => {
    const { connection } = await pool.connect({ transport }, []);
    events.length = 0;
    await expect(connection.invoke('Secret')).rejects.toThrow("Failed to invoke 'Secret' because user is unauthorized");
    expect(events).toEqual([]);
  });

  test('onConnected and onDisconnected run through the lifecycle filters', async () => {
    const { connection } = await pool.connect({ transport }, []);
    const id = connection.connectionId!;
    expect(events).toEqual(expect.arrayContaining([`outer connected ${id}`, `hub connected ${id}`]));
    expect(events.indexOf(`outer connected ${id}`)).toBeLessThan(events.indexOf(`hub connected ${id}`));
    await connection.stop();
    await eventually(() => events.includes(`hub disconnected ${id}`), 'onDisconnected to run');
    expect(events.indexOf(`outer disconnected ${id} clean`)).toBeLessThan(events.indexOf(`hub disconnected ${id}`));
  });
});

test("a filter whose onConnected throws closes the connection with .NET's error, as the hook throwing does", async () => {
  class QuietHub extends Hub {}
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [
      {
        path: '/refusing',
        hub: QuietHub,
        hubFilters: [
          {
            onConnected: () => {
              throw new Error('not today');
            },
          },
        ],
      },
    ],
  });
  const refusing = await listen(app, '/refusing');
  const refusingPool = new ClientPool(() => refusing.hubUrl);
  try {
    const client = await refusingPool.connect({}, []).catch((error: Error) => error);
    const error = client instanceof Error ? client : await client.closed;
    expect(String(error)).toMatch(/Server returned an error on close: Connection closed with an error\./);
  } finally {
    await refusingPool.stopAll();
    await refusing.close();
  }
});

test('hubFilters entries are validated when the plugin registers', async () => {
  class NullHub extends Hub {}
  const app = Fastify();
  await expect(
    app.register(fastifySignalR, {
      hubs: [{ path: '/h', hub: NullHub }],
      hubFilters: [{ invokeMethd: () => 1 } as unknown as HubFilter],
    }),
  ).rejects.toThrow(/hubFilters/);
  await app.close();
});
