/**
 * Every kind of backplane message between two server processes, with real official clients: a JSON client on one
 * server and a MessagePack client on the other send to all, to a group, to a user and to a connection, add and
 * remove the other server's connection to a group (group command + ack), and ask each other's client for a result.
 * Used by the deployment tests (TLS + ACL, Cluster, Sentinel) to show that a topology carries all of it.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ClientPool, delay, eventually, type TestClient } from './clients';
import type { ServerProcess } from './server-process';

/** Quiet time after which a message that has not arrived is taken as not sent. */
const SETTLE_MS = 250;

/** The texts a client received as `ReceiveMessage`. */
export const texts = (client: TestClient): string[] =>
  client.inbox('ReceiveMessage').items.map(([, text]) => text as string);

/** Connects a client to `server` as `user` and waits until its channels are subscribed. */
export async function connectClient(pool: ClientPool, user: string, msgpack: boolean): Promise<TestClient> {
  const client = await pool.connect(
    {
      transport: HttpTransportType.WebSockets,
      query: `user=${user}`,
      handlers: { GetAnswer: (question: unknown) => `${user}'s answer to ${String(question)}` },
      ...(msgpack && { protocol: new MessagePackHubProtocol() }),
    },
    ['ReceiveMessage'],
  );
  // The message loop opens only after onConnected, so an answered invocation means the channels are subscribed.
  await client.connection.invoke('WhoAmI');
  return client;
}

/** The kinds exchanged, in order, for reports. */
export const MESSAGE_KINDS = [
  'all',
  'group',
  'user',
  'connection',
  'remote group add',
  'remote group remove',
  'client result',
];

/**
 * Exchanges every message kind between a client of `a` and a client of `b`, both ways, and asserts each arrived
 * exactly where it should. `tag` keeps the texts of one run apart from another's.
 */
export async function exchangeEveryKind(a: ServerProcess, b: ServerProcess, tag: string): Promise<void> {
  const poolA = new ClientPool(() => a.hubUrl);
  const poolB = new ClientPool(() => b.hubUrl);
  try {
    const alice = await connectClient(poolA, `alice-${tag}`, false);
    const bob = await connectClient(poolB, `bob-${tag}`, true);
    const ids = { alice: alice.connection.connectionId!, bob: bob.connection.connectionId! };
    const got = (client: TestClient, text: string) => texts(client).filter((item) => item === text).length;
    const expectOnly = async (text: string, receivers: TestClient[]) => {
      await eventually(() => receivers.every((client) => got(client, text) >= 1), `'${text}' to arrive`);
      await delay(SETTLE_MS);
      expect({ text, alice: got(alice, text), bob: got(bob, text) }).toEqual({
        text,
        alice: receivers.includes(alice) ? 1 : 0,
        bob: receivers.includes(bob) ? 1 : 0,
      });
    };

    // all, from each side
    await alice.connection.invoke('SendMessage', 'alice', `${tag} all from A`);
    await bob.connection.invoke('SendMessage', 'bob', `${tag} all from B`);
    await expectOnly(`${tag} all from A`, [alice, bob]);
    await expectOnly(`${tag} all from B`, [alice, bob]);
    // group: joined on B, sent from A (and the other way round)
    await bob.connection.invoke('JoinRoom', `${tag}-room-b`);
    await alice.connection.invoke('JoinRoom', `${tag}-room-a`);
    await alice.connection.invoke('SendToRoom', `${tag}-room-b`, 'alice', `${tag} group from A`);
    await bob.connection.invoke('SendToRoom', `${tag}-room-a`, 'bob', `${tag} group from B`);
    await expectOnly(`${tag} group from A`, [bob]);
    await expectOnly(`${tag} group from B`, [alice]);
    // user
    await alice.connection.invoke('SendToUser', `bob-${tag}`, 'alice', `${tag} user from A`);
    await bob.connection.invoke('SendToUser', `alice-${tag}`, 'bob', `${tag} user from B`);
    await expectOnly(`${tag} user from A`, [bob]);
    await expectOnly(`${tag} user from B`, [alice]);
    // connection
    await alice.connection.invoke('SendToConnection', ids.bob, 'alice', `${tag} connection from A`);
    await bob.connection.invoke('SendToConnection', ids.alice, 'bob', `${tag} connection from B`);
    await expectOnly(`${tag} connection from A`, [bob]);
    await expectOnly(`${tag} connection from B`, [alice]);
    // remote group add and remove: a group command to the owning server, answered by its ack
    await alice.connection.invoke('AddToRoom', ids.bob, `${tag}-managed`);
    await alice.connection.invoke('SendToRoom', `${tag}-managed`, 'alice', `${tag} managed 1`);
    await expectOnly(`${tag} managed 1`, [bob]);
    await alice.connection.invoke('RemoveFromRoom', ids.bob, `${tag}-managed`);
    await alice.connection.invoke('SendToRoom', `${tag}-managed`, 'alice', `${tag} managed 2`);
    await expectOnly(`${tag} managed 2`, []);
    // client results across the servers, both ways
    expect(await alice.connection.invoke('AskClient', ids.bob)).toBe(`bob-${tag}'s answer to question`);
    expect(await bob.connection.invoke('AskClient', ids.alice)).toBe(`alice-${tag}'s answer to question`);
  } finally {
    await Promise.all([poolA.stopAll(), poolB.stopAll()]);
  }
}
