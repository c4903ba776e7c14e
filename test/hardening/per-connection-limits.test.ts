/**
 * What one connection can make the hub hold is bounded. Against the chat sample in its own process, with its
 * default limits:
 * - a client asking itself for results it never gives: 100 wait, every further one fails at once with a message
 *   naming the bound; memory stays flat; at its disconnect the failures of those 100 are logged as five lines and
 *   one line with the count, not a stack trace each;
 * - streams it never finishes, each way: 100 open, further ones fail with a message naming the bound;
 * - groups: 1000 per connection, names up to 1024 characters, each past it failing with a message naming the bound.
 * A well-behaved official client on the same server is served throughout.
 */
import { Subject } from '@microsoft/signalr';
import { ClientPool, eventually, type TestClient } from '../support/clients';
import { residentMemory } from '../support/os';
import { ServerProcess } from '../support/server-process';

const MiB = 1024 * 1024;

let server: ServerProcess;
const pool = new ClientPool(() => server.hubUrl);
let bystander: TestClient;

beforeAll(async () => {
  server = await ServerProcess.start('per-connection-limits', {});
  bystander = await pool.connect();
});

afterAll(async () => {
  await pool.stopAll();
  await server.stop();
});

/** Settles every promise; returns the rejection messages, in order, and how many are still pending after `ms`. */
async function outcomes(
  promises: Promise<unknown>[],
  ms: number,
): Promise<{ errors: string[]; pending: number; resolved: number }> {
  const state = promises.map(() => 'pending' as 'pending' | 'resolved' | string);
  promises.forEach((promise, i) =>
    promise.then(
      () => (state[i] = 'resolved'),
      (error: Error) => (state[i] = `error: ${error.message}`),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return {
    errors: state.filter((entry) => entry.startsWith('error: ')),
    pending: state.filter((entry) => entry === 'pending').length,
    resolved: state.filter((entry) => entry === 'resolved').length,
  };
}

test('a client that never answers its own client results: 100 wait, the rest fail at once, memory flat, the disconnect logged in six lines', async () => {
  const attacker = await pool.connect({ handlers: { GetAnswer: () => new Promise(() => undefined) } });
  const id = attacker.connection.connectionId!;
  const before = residentMemory(server.pid);
  const asks = Array.from({ length: 3_000 }, () => attacker.connection.invoke('AskClient', id));
  const result = await outcomes(asks, 3_000);
  expect(result.pending).toBe(100);
  expect(result.errors).toHaveLength(2_900);
  expect(result.errors[0]).toContain(
    `Connection '${id}' already has 100 client results pending, the most maximumPendingClientResultsPerConnection allows.`,
  );
  expect(await bystander.connection.invoke('Echo', 'served')).toBe('served');
  expect(residentMemory(server.pid).rss - before.rss).toBeLessThan(40 * MiB);

  // Its disconnect fails the 100 waiting hub methods: five logged in full, the other 95 counted in one line.
  const logBefore = server.log.length;
  await attacker.connection.stop();
  const failuresOf = () =>
    server.logLines().filter((line) => line.event === 'signalr.invocation.failed' && line.connectionId === id);
  await eventually(() => failuresOf().some((line) => line.suppressed !== undefined), 'the summary line', 15_000);
  const lines = failuresOf();
  expect(lines.filter((line) => line.err !== undefined)).toHaveLength(5);
  expect(lines.filter((line) => line.suppressed !== undefined)).toEqual([
    expect.objectContaining({ suppressed: 95, method: 'askClient' }),
  ]);
  expect(server.log.length - logBefore).toBeLessThan(64 * 1024);
  expect(await bystander.connection.invoke('Echo', 'still served')).toBe('still served');
}, 60_000);

test('streams a client never finishes: 100 open each way, further ones fail naming the bound', async () => {
  const attacker = await pool.connect();
  // Server-to-client: Counter(n, -1) sends one item and then waits until cancelled.
  const downloads = Array.from({ length: 150 }, () => {
    const stream = attacker.connection.stream('Counter', 1_000, -1);
    return new Promise<void>((resolve, reject) => {
      stream.subscribe({ next: () => undefined, error: reject, complete: resolve });
    });
  });
  const down = await outcomes(downloads, 2_000);
  expect(down.pending).toBe(100);
  expect(down.errors).toHaveLength(50);
  expect(down.errors[0]).toContain(
    'already has 100 server-to-client streams open, the most maximumStreamsPerConnection allows.',
  );

  // Client-to-server: Sum(stream) waits for its stream to complete.
  const subjects = Array.from({ length: 150 }, () => new Subject<number>());
  const uploads = subjects.map((subject) => attacker.connection.invoke('Sum', subject));
  const up = await outcomes(uploads, 2_000);
  expect(up.pending).toBe(100);
  expect(up.errors).toHaveLength(50);
  expect(up.errors[0]).toContain(
    'already has 100 client-to-server streams open, the most maximumStreamsPerConnection allows.',
  );
  // The open ones still work.
  subjects[0].next(41);
  subjects[0].next(1);
  subjects[0].complete();
  expect(await uploads[0]).toBe(42);
  expect(await bystander.connection.invoke('Echo', 'served')).toBe('served');
  await attacker.connection.stop();
}, 60_000);

test('groups: 1000 per connection and names up to 1024 characters; each past the bound fails naming it', async () => {
  const attacker = await pool.connect();
  for (let start = 0; start < 1_000; start += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => attacker.connection.invoke('JoinRoom', `room-${start + i}`)),
    );
  }
  // Joining a group it is in again is no new group.
  await attacker.connection.invoke('JoinRoom', 'room-7');
  await expect(attacker.connection.invoke('JoinRoom', 'one too many')).rejects.toThrow(
    `is already in 1000 groups, the most maximumGroupsPerConnection allows.`,
  );
  await attacker.connection.invoke('LeaveRoom', 'room-0');
  await attacker.connection.invoke('JoinRoom', 'one too many');

  await expect(bystander.connection.invoke('JoinRoom', 'x'.repeat(1_025))).rejects.toThrow(
    'The group name is 1025 characters long, more than maximumGroupNameLength (1024) allows.',
  );
  await bystander.connection.invoke('JoinRoom', 'x'.repeat(1_024));
  await bystander.connection.invoke('SendToRoom', 'x'.repeat(1_024), 'me', 'in the longest room');
  expect(await bystander.inbox('ReceiveMessage').waitFor(1)).toEqual([['me', 'in the longest room']]);
  await attacker.connection.stop();
}, 60_000);
