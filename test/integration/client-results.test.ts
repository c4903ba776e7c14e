/**
 * Client results (docs/protocol.md §2.7) with the real @microsoft/signalr client: a hub method or code outside any hub
 * calls a client with `invoke` and gets what the client's handler returns — or its error, a timeout through an
 * `AbortSignal`, or the connection going away. Texts are the ones the ASP.NET Core reference server produces; the
 * scheduling matches it too (a method awaiting a client result gives up its invocation slot).
 */
import Fastify from 'fastify';
import { fastifySignalR, Hub, type HubContext } from '../../src';
import { ClientPool, delay, eventually, type TestClient } from '../support/clients';
import { CLIENT_COMBINATIONS } from '../support/matrix';
import { listen, startChatServer, type RunningServer } from '../support/servers';

/** The rejection of a promise; fails when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Resolves the calls in parallel and returns their labels in the order they completed. */
async function completionOrder(calls: Array<[string, Promise<unknown>]>): Promise<string[]> {
  const order: string[] = [];
  await Promise.all(calls.map(([label, call]) => call.then(() => order.push(label))));
  return order;
}

const onConnectedOutcomes: string[] = [];

class AskHub extends Hub {
  override async onConnected(): Promise<void> {
    try {
      await this.clients.caller.invoke('GetAnswer', 'too early');
      onConnectedOutcomes.push(`${this.context.connectionId} answered`);
    } catch (error) {
      onConnectedOutcomes.push(`${this.context.connectionId} ${(error as Error).name}: ${(error as Error).message}`);
    }
  }

  /** Asks the caller itself. */
  async askCaller(question: string): Promise<unknown> {
    return await this.clients.caller.invoke('GetAnswer', question);
  }

  /** Asks another connection and gives up after `ms`. */
  async askWithTimeout(connectionId: string, ms: number): Promise<unknown> {
    return await this.clients.client(connectionId).invoke('GetAnswer', 'quick?', AbortSignal.timeout(ms));
  }

  /** Asks the caller three questions at once. */
  async askThree(): Promise<unknown[]> {
    const caller = this.clients.caller;
    return await Promise.all([
      caller.invoke('GetAnswer', 1),
      caller.invoke('GetAnswer', 2),
      caller.invoke('GetAnswer', 3),
    ]);
  }

  echo(value: unknown): unknown {
    return value;
  }
}

let chat: RunningServer;
let chatDetailed: RunningServer;
let asks: RunningServer;

beforeAll(async () => {
  chat = await startChatServer();
  chatDetailed = await startChatServer({ enableDetailedErrors: true });
  const app = Fastify();
  await app.register(fastifySignalR, { hubs: [{ path: '/ask', hub: AskHub }] });
  asks = await listen(app, '/ask');
});
afterAll(async () => {
  await Promise.all([chat.close(), chatDetailed.close(), asks.close()]);
});

describe.each(CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => {
  const chatClients = new ClientPool(() => chat.hubUrl);
  const detailedClients = new ClientPool(() => chatDetailed.hubUrl);
  const askClients = new ClientPool(() => asks.hubUrl);
  afterAll(async () => {
    await Promise.all([chatClients.stopAll(), detailedClients.stopAll(), askClients.stopAll()]);
  });

  /** A chat client whose `GetAnswer` handler is `answer` (none when omitted). */
  const chatPeer = (answer?: (question: unknown) => unknown, pool = chatClients): Promise<TestClient> =>
    pool.connect({ transport, protocol, handlers: answer ? { GetAnswer: answer } : {} }, []);
  const askPeer = (answer?: (question: unknown) => unknown): Promise<TestClient> =>
    askClients.connect({ transport, protocol, handlers: answer ? { GetAnswer: answer } : {} }, []);
  // By path, so untyped: these calls send what the ChatClient interface would refuse to compile.
  const outside = (): HubContext => chat.app.signalr.hub('/chathub');

  describe('from a hub method', () => {
    test("AskClient gets another connection's answer", async () => {
      const questions: unknown[] = [];
      const answering = await chatPeer((question) => {
        questions.push(question);
        return `answer to ${String(question)}`;
      });
      const asker = await chatPeer();
      expect(await asker.connection.invoke('AskClient', answering.connection.connectionId)).toBe('answer to question');
      expect(questions).toEqual(['question']);
    });

    test('asking the caller itself works with the default limit of one invocation at a time', async () => {
      const peer = await chatPeer((question) => `answer to ${String(question)}`);
      expect(await peer.connection.invoke('AskClient', peer.connection.connectionId)).toBe('answer to question');
      const own = await askPeer(async (question) => `async ${String(question)}`);
      expect(await own.connection.invoke('AskCaller', 'q')).toBe('async q');
      expect(await own.connection.invoke('AskThree')).toEqual(['async 1', 'async 2', 'async 3']);
    });

    test('a method awaiting a client result gives up its slot: a later Echo finishes first', async () => {
      const peer = await chatPeer(async () => {
        await delay(300);
        return 'slow answer';
      });
      const order = await completionOrder([
        ['AskClient', peer.connection.invoke('AskClient', peer.connection.connectionId)],
        ['Echo', peer.connection.invoke('Echo', 1)],
      ]);
      expect(order).toEqual(['Echo', 'AskClient']);
    });

    test("the client's failures, as .NET words them", async () => {
      const asker = await chatPeer();
      const ask = (id: string | null) => asker.connection.invoke('AskClient', id);
      const noHandler = await chatPeer();
      const undefinedResult = await chatPeer(() => undefined);
      const throwing = await chatPeer(() => {
        throw new Error('nope');
      });
      expect((await rejectionOf(ask(noHandler.connection.connectionId))).message).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
      );
      expect((await rejectionOf(ask(undefinedResult.connection.connectionId))).message).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
      );
      expect((await rejectionOf(ask(throwing.connection.connectionId))).message).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: Error: nope",
      );
      // The IOException of an unknown connection is not a HubException: hidden without detailed errors.
      expect((await rejectionOf(ask('no-such-connection'))).message).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server.",
      );
      const verbose = await chatPeer(undefined, detailedClients);
      expect((await rejectionOf(verbose.connection.invoke('AskClient', 'no-such-connection'))).message).toBe(
        "An unexpected error occurred invoking 'AskClient' on the server. IOException: Connection 'no-such-connection' does not exist.",
      );
    });

    test('a timeout through an AbortSignal', async () => {
      const late = await askPeer(async () => {
        await delay(1000);
        return 'too late';
      });
      const asker = await askPeer();
      const started = Date.now();
      expect(
        (await rejectionOf(asker.connection.invoke('AskWithTimeout', late.connection.connectionId, 100))).message,
      ).toBe(
        "An unexpected error occurred invoking 'AskWithTimeout' on the server. HubException: Invocation canceled by the server.",
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      expect(Date.now() - started).toBeLessThan(900);
      // The late answer is ignored; both connections go on.
      await delay(1000);
      expect(await late.connection.invoke('Echo', 'fine')).toBe('fine');
      expect(await asker.connection.invoke('Echo', 'fine')).toBe('fine');
    });

    test("not in onConnected: refused with .NET's InvalidOperationException", async () => {
      let asked = false;
      const peer = await askPeer(() => {
        asked = true;
        return 'answer';
      });
      const id = peer.connection.connectionId!;
      await eventually(() => onConnectedOutcomes.some((outcome) => outcome.startsWith(id)), 'onConnected to finish');
      expect(onConnectedOutcomes.find((outcome) => outcome.startsWith(id))).toBe(
        `${id} InvalidOperationException: Client results inside OnConnectedAsync Hub methods are not allowed.`,
      );
      expect(asked).toBe(false);
    });
  });

  describe('from outside any hub (app.signalr.hub(...).clients)', () => {
    test('resolves with the answer, sync or async', async () => {
      const sync = await chatPeer((question) => `sync ${String(question)}`);
      const async = await chatPeer(async (question) => {
        await delay(20);
        return { echoed: question };
      });
      expect(await outside().clients.client(sync.connection.connectionId!).invoke('GetAnswer', 'hi')).toBe('sync hi');
      expect(await outside().clients.client(async.connection.connectionId!).invoke('GetAnswer', [1, 2])).toEqual({
        echoed: [1, 2],
      });
    });

    test("rejects with the client's error as a HubException", async () => {
      const noHandler = await chatPeer();
      const throwing = await chatPeer(() => {
        throw new Error('nope');
      });
      const missing = await rejectionOf(
        outside().clients.client(noHandler.connection.connectionId!).invoke('GetAnswer'),
      );
      expect([missing.name, missing.message]).toEqual(['HubException', "Client didn't provide a result."]);
      const thrown = await rejectionOf(outside().clients.client(throwing.connection.connectionId!).invoke('GetAnswer'));
      expect([thrown.name, thrown.message]).toEqual(['HubException', 'Error: nope']);
    });

    test('times out with AbortSignal.timeout; the late answer is ignored', async () => {
      const late = await chatPeer(async () => {
        await delay(300);
        return 'too late';
      });
      const started = Date.now();
      const timedOut = await rejectionOf(
        outside().clients.client(late.connection.connectionId!).invoke('GetAnswer', 'q', AbortSignal.timeout(100)),
      );
      expect([timedOut.name, timedOut.message]).toEqual(['HubException', 'Invocation canceled by the server.']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      await delay(300);
      expect(await late.connection.invoke('Echo', 'fine')).toBe('fine');
    });

    test('an aborted signal cancels before anything is sent', async () => {
      let asked = false;
      const peer = await chatPeer(() => {
        asked = true;
        return 'answer';
      });
      const canceled = await rejectionOf(
        outside().clients.client(peer.connection.connectionId!).invoke('GetAnswer', 'q', AbortSignal.abort()),
      );
      expect([canceled.name, canceled.message]).toEqual(['HubException', 'Invocation canceled by the server.']);
      await delay(100);
      expect(asked).toBe(false);
    });

    test('rejects when the connection goes away, or does not exist', async () => {
      const peer = await chatPeer(() => new Promise(() => undefined));
      const id = peer.connection.connectionId!;
      const pending = rejectionOf(outside().clients.client(id).invoke('GetAnswer', 'q'));
      await delay(50);
      await peer.connection.stop();
      const gone = await pending;
      expect([gone.name, gone.message]).toEqual(['IOException', `Connection '${id}' disconnected.`]);
      const unknown = await rejectionOf(outside().clients.client('no-such-connection').invoke('GetAnswer'));
      expect([unknown.name, unknown.message]).toEqual([
        'IOException',
        "Connection 'no-such-connection' does not exist.",
      ]);
    });
  });
});
