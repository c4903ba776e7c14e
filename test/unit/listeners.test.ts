/**
 * The test harness's check that a child process, and not another program, listens on the port chosen for it
 * (`test/support/listeners.ts`, used by `ServerProcess.start`).
 */
import * as net from 'node:net';
import { listensOn, waitForListener } from '../support/listeners';
import { freePort } from '../support/redis-server';

test('a listening socket is found among its own process’s sockets, not among another’s', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    expect(listensOn(process.pid, port)).toBe(true);
    expect(listensOn(process.ppid, port)).toBe(false);
    await expect(waitForListener(process.pid, port, 1000, () => false)).resolves.toBeUndefined();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  expect(listensOn(process.pid, port)).toBe(false);
  const unused = await freePort();
  await expect(waitForListener(process.pid, unused, 100, () => false)).rejects.toThrow(/did not listen/);
  await expect(waitForListener(process.pid, unused, 1000, () => true)).rejects.toThrow(/exited/);
});
