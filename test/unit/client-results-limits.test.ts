/**
 * The bookkeeping of client results bounds what waits: per connection and per hub, each refusal a `HubException`
 * naming its bound, with room again once a result arrives; a disconnect fails only that connection's waits.
 */
import { HubException } from '../../src/shared/errors';
import { ClientResultsManager, ConnectionIOError } from '../../src/lifetime/client-results';

test('per connection: the wait past the bound is refused, and a result makes room again', async () => {
  const manager = new ClientResultsManager({ maximumPerConnection: 2, maximumTotal: null });
  const first = manager.add('a', 'i1', undefined);
  manager.add('a', 'i2', undefined).catch(() => undefined);
  expect(() => manager.add('a', 'i3', undefined)).toThrow(HubException);
  expect(() => manager.add('a', 'i3', undefined)).toThrow(
    "Connection 'a' already has 2 client results pending, the most maximumPendingClientResultsPerConnection allows.",
  );
  // Another connection has its own room.
  manager.add('b', 'j1', undefined).catch(() => undefined);
  expect(manager.complete('a', { type: 3, invocationId: 'i1', result: 42 })).toBe(true);
  expect(await first).toBe(42);
  manager.add('a', 'i3', undefined).catch(() => undefined);
  expect(manager.size).toBe(3);
});

test('per hub: the wait past the total is refused whichever connection asks', () => {
  const manager = new ClientResultsManager({ maximumPerConnection: null, maximumTotal: 2 });
  manager.add('a', 'i1', undefined).catch(() => undefined);
  manager.add('b', 'j1', undefined).catch(() => undefined);
  expect(() => manager.add('c', 'k1', undefined)).toThrow(
    'The server already waits for 2 client results, the most maximumPendingClientResults allows.',
  );
  manager.remove('j1');
  manager.add('c', 'k1', undefined).catch(() => undefined);
  expect(manager.size).toBe(2);
});

test("a disconnect fails that connection's waits only, each with its own IOException", async () => {
  const manager = new ClientResultsManager({ maximumPerConnection: null, maximumTotal: null });
  const gone = [manager.add('a', 'i1', undefined), manager.add('a', 'i2', undefined)];
  const staying = manager.add('b', 'j1', undefined);
  manager.failConnection('a');
  const errors = await Promise.all(gone.map((wait) => wait.catch((error: unknown) => error)));
  expect(errors.map((error) => [error instanceof ConnectionIOError, (error as Error).message])).toEqual([
    [true, "Connection 'a' disconnected."],
    [true, "Connection 'a' disconnected."],
  ]);
  expect(errors[0]).not.toBe(errors[1]);
  expect(manager.size).toBe(1);
  expect(manager.complete('b', { type: 3, invocationId: 'j1', result: 'still here' })).toBe(true);
  expect(await staying).toBe('still here');
});
