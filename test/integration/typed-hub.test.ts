/**
 * Strongly typed hubs (`Hub<TClient>`, ASP.NET Core's `Hub<T>`): the client interface checks sends and client-result
 * calls at compile time — the `@ts-expect-error` lines below fail the typecheck if a mistake stops being an error —
 * and changes nothing on the wire, shown with the real client.
 */
import Fastify from 'fastify';
import { fastifySignalR, Hub, type HubContext } from '../../src';
import { ClientPool } from '../support/clients';
import { listen, type RunningServer } from '../support/servers';

/** The methods the chat clients register with `connection.on`. */
interface ChatClient {
  ReceiveMessage(user: string, message: string): void;
  Confirm(question: string): Promise<boolean>;
}

class TypedChatHub extends Hub<ChatClient> {
  async sendMessage(user: string, message: string) {
    await this.clients.all.send('ReceiveMessage', user, message);
  }

  async askCaller(question: string) {
    const sure = await this.clients.caller.invoke('Confirm', question, AbortSignal.timeout(5000));
    // The result is typed by the interface: a boolean, so this compiles without a cast.
    const answer: boolean = sure;
    return answer ? 'confirmed' : 'declined';
  }

  /** Never called (and, starting with `_`, not callable by clients): mistakes the interface makes compile errors. */
  _mistakes() {
    // @ts-expect-error -- no such client method
    void this.clients.all.send('ReceiveMesage', 'a', 'b');
    // @ts-expect-error -- missing argument
    void this.clients.others.send('ReceiveMessage', 'a');
    // @ts-expect-error -- wrong argument type
    void this.clients.group('room').send('ReceiveMessage', 'a', 42);
    // @ts-expect-error -- the result is a boolean, not a string
    void this.clients.caller.invoke('Confirm', 'q').then((result: string) => result);
  }
}

/** A hub without a client interface keeps the untyped API: any method, any arguments, `invoke<T>`. */
class UntypedHub extends Hub {
  async anything() {
    await this.clients.all.send('WhateverTheClientHandles', 1, { two: 2 }, [3]);
    return this.clients.caller.invoke<number>('Count');
  }
}

let server: RunningServer;
const pool = new ClientPool(() => server.hubUrl);
beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [
      { path: '/typed', hub: TypedChatHub },
      { path: '/untyped', hub: UntypedHub },
    ],
  });
  server = await listen(app, '/typed');
});
afterAll(async () => {
  await pool.stopAll();
  await server.close();
});

test('sends of a typed hub reach the official client under the interface method names', async () => {
  const alice = await pool.connect({}, ['ReceiveMessage']);
  const bob = await pool.connect({}, ['ReceiveMessage']);
  await alice.connection.invoke('SendMessage', 'alice', 'hello');
  expect(await bob.inbox('ReceiveMessage').waitFor(1)).toEqual([['alice', 'hello']]);
  expect(await alice.inbox('ReceiveMessage').waitFor(1)).toEqual([['alice', 'hello']]);
});

test('a client-result call of a typed hub resolves with the client handler return value', async () => {
  const { connection } = await pool.connect({ handlers: { Confirm: (question: unknown) => question === 'Sure?' } }, []);
  expect(await connection.invoke('AskCaller', 'Sure?')).toBe('confirmed');
  expect(await connection.invoke('AskCaller', 'Not this one?')).toBe('declined');
});

test('app.signalr.hub(HubClass) gives a context typed by the hub client interface', async () => {
  const receiver = await pool.connect({}, ['ReceiveMessage']);
  const context: HubContext<ChatClient> = server.app.signalr.hub(TypedChatHub);
  await context.clients.all.send('ReceiveMessage', 'server', 'from outside');
  // @ts-expect-error -- the context is typed too
  await expect(context.clients.all.send('ReceiveMessage', 'server')).resolves.toBeUndefined();
  expect(await receiver.inbox('ReceiveMessage').waitFor(2)).toEqual([['server', 'from outside'], ['server']]);
  // By path the hub class is unknown, so the context is untyped.
  await server.app.signalr.hub('/typed').clients.all.send('AnythingAtAll', 1, 2, 3);
});
