/**
 * Every routing kind of the in-memory lifetime manager, with several real clients: all, caller, others,
 * client(id), clients(ids), allExcept, group, groups, groupExcept, othersInGroup, user, users; groups add/remove;
 * sending from outside a hub; cleanup when clients leave.
 */
import { ClientPool, delay, type TestClient } from '../support/clients';
import { startChatServer, type RunningServer } from '../support/servers';

let server: RunningServer;
const pool = new ClientPool(() => server.hubUrl);
let alice: TestClient;
let alice2: TestClient;
let bob: TestClient;
let carol: TestClient;
let everyone: TestClient[];

/** Quiet time after which a message that has not arrived is taken as not sent. */
const SETTLE_MS = 150;

beforeAll(async () => {
  server = await startChatServer();
});
beforeEach(async () => {
  alice = await pool.connect({ query: 'user=alice' });
  alice2 = await pool.connect({ query: 'user=alice' });
  bob = await pool.connect({ query: 'user=bob' });
  carol = await pool.connect({ query: 'user=carol' });
  everyone = [alice, alice2, bob, carol];
});
afterEach(() => pool.stopAll());
afterAll(() => server.close());

const id = (client: TestClient) => client.connection.connectionId!;

/** Asserts who received `message` (once each) and that nobody else did. */
async function expectDelivered(message: string, receivers: TestClient[], times = 1): Promise<void> {
  await Promise.all(receivers.map((client) => client.inbox('ReceiveMessage').waitFor(times)));
  await delay(SETTLE_MS);
  for (const client of everyone) {
    const got = client.inbox('ReceiveMessage').items.filter(([, text]) => text === message).length;
    expect({ client: everyone.indexOf(client), got }).toEqual({
      client: everyone.indexOf(client),
      got: receivers.includes(client) ? times : 0,
    });
  }
}

test('all', async () => {
  await bob.connection.invoke('SendMessage', 'bob', 'to all');
  await expectDelivered('to all', everyone);
  expect(alice.inbox('ReceiveMessage').items[0]).toEqual(['bob', 'to all']);
});

test('caller: a hub method answering only its caller', async () => {
  expect(await carol.connection.invoke('WhoAmI')).toBe('carol');
  await carol.connection.invoke('SendToConnection', id(carol), 'carol', 'to me');
  await expectDelivered('to me', [carol]);
});

test('others', async () => {
  await alice.connection.invoke('SendOthers', 'alice', 'to others');
  await expectDelivered('to others', [alice2, bob, carol]);
});

test('client(id) and clients(ids)', async () => {
  await alice.connection.invoke('SendToConnection', id(bob), 'alice', 'to bob');
  await expectDelivered('to bob', [bob]);
  await alice.connection.invoke('SendToConnections', [id(bob), id(carol), 'unknown-id'], 'alice', 'to two');
  await expectDelivered('to two', [bob, carol]);
});

test('allExcept(ids)', async () => {
  await bob.connection.invoke('SendAllExcept', [id(alice), id(carol)], 'bob', 'not to alice 1 or carol');
  await expectDelivered('not to alice 1 or carol', [alice2, bob]);
});

test('group: join, send, leave', async () => {
  await alice.connection.invoke('JoinRoom', 'r1');
  await bob.connection.invoke('JoinRoom', 'r1');
  await carol.connection.invoke('SendToRoom', 'r1', 'carol', 'to r1');
  await expectDelivered('to r1', [alice, bob]);
  await bob.connection.invoke('LeaveRoom', 'r1');
  await carol.connection.invoke('SendToRoom', 'r1', 'carol', 'to r1 again');
  await expectDelivered('to r1 again', [alice]);
});

test("group names are case-sensitive, as in .NET's default manager", async () => {
  await alice.connection.invoke('JoinRoom', 'Room');
  await carol.connection.invoke('SendToRoom', 'room', 'carol', 'lower case');
  await expectDelivered('lower case', []);
});

test('groups(names): a member of two groups gets the message once per group', async () => {
  await alice.connection.invoke('JoinRoom', 'g1');
  await bob.connection.invoke('JoinRoom', 'g2');
  await carol.connection.invoke('JoinRoom', 'g1');
  await carol.connection.invoke('JoinRoom', 'g2');
  await alice2.connection.invoke('SendToRooms', ['g1', 'g2', 'empty'], 'x', 'to g1 and g2');
  await Promise.all([alice, bob].map((client) => client.inbox('ReceiveMessage').waitFor(1)));
  await carol.inbox('ReceiveMessage').waitFor(2);
  await delay(SETTLE_MS);
  expect(alice2.inbox('ReceiveMessage').items).toHaveLength(0);
  expect(carol.inbox('ReceiveMessage').items).toEqual([
    ['x', 'to g1 and g2'],
    ['x', 'to g1 and g2'],
  ]);
});

test('groupExcept and othersInGroup', async () => {
  for (const client of everyone) await client.connection.invoke('JoinRoom', 'team');
  await alice.connection.invoke('SendRoomExcept', 'team', [id(bob)], 'alice', 'team but bob');
  await expectDelivered('team but bob', [alice, alice2, carol]);
  await carol.connection.invoke('SendOthersInRoom', 'team', 'carol', 'team but me');
  await expectDelivered('team but me', [alice, alice2, bob]);
});

test('user: every connection of that user', async () => {
  await carol.connection.invoke('SendToUser', 'alice', 'carol', 'to alice everywhere');
  await expectDelivered('to alice everywhere', [alice, alice2]);
});

test('users(ids)', async () => {
  await carol.connection.invoke('SendToUsers', ['alice', 'bob', 'nobody'], 'carol', 'to alice and bob');
  await expectDelivered('to alice and bob', [alice, alice2, bob]);
});

test('add and remove any connection to a group', async () => {
  await alice.connection.invoke('AddToRoom', id(bob), 'managed');
  await carol.connection.invoke('SendToRoom', 'managed', 'carol', 'managed 1');
  await expectDelivered('managed 1', [bob]);
  await alice.connection.invoke('RemoveFromRoom', id(bob), 'managed');
  await carol.connection.invoke('SendToRoom', 'managed', 'carol', 'managed 2');
  await expectDelivered('managed 2', []);
});

test('a hub context sends from outside any hub (an HTTP route, a timer)', async () => {
  const context = server.app.signalr.hub('/chathub');
  await alice.connection.invoke('JoinRoom', 'news');
  await context.clients.all.send('ReceiveMessage', 'server', 'from outside');
  await expectDelivered('from outside', everyone);
  await context.clients.group('news').send('ReceiveMessage', 'server', 'news only');
  await expectDelivered('news only', [alice]);
  await context.clients.user('bob').send('ReceiveMessage', 'server', 'bob only');
  await expectDelivered('bob only', [bob]);
  await context.groups.addToGroup(id(carol), 'news');
  await context.clients.groupExcept('news', [id(alice)]).send('ReceiveMessage', 'server', 'news but alice');
  await expectDelivered('news but alice', [carol]);
});

test('a client that leaves is removed from its groups and its user', async () => {
  await bob.connection.invoke('JoinRoom', 'leavers');
  const endpoint = server.app.signalr.endpoints[0];
  const before = endpoint.connectionCount;
  await bob.connection.stop();
  await delay(100);
  expect(endpoint.connectionCount).toBe(before - 1);
  await alice.connection.invoke('SendToRoom', 'leavers', 'alice', 'anyone?');
  await alice.connection.invoke('SendToUser', 'bob', 'alice', 'bob?');
  await delay(SETTLE_MS);
  expect(bob.inbox('ReceiveMessage').items).toHaveLength(0);
  // A new bob joins nothing he did not join himself.
  const bobAgain = await pool.connect({ query: 'user=bob' });
  await alice.connection.invoke('SendToRoom', 'leavers', 'alice', 'still anyone?');
  await alice.connection.invoke('SendToUser', 'bob', 'alice', 'new bob');
  await bobAgain.inbox('ReceiveMessage').waitFor(1);
  await delay(SETTLE_MS);
  expect(bobAgain.inbox('ReceiveMessage').items).toEqual([['alice', 'new bob']]);
});
