/**
 * The production log destination against a real pipe whose reader stalls, comes back, and dies: the server's event
 * loop never blocks on it, what waits is bounded (the rest dropped and counted, then reported in one line), and a
 * reader that is gone ends logging instead of holding anything — or the exit — up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { LogDestination } from '../../src/operations/logging';
import { eventually } from '../support/clients';
import { killOnExit } from '../support/child-processes';

const QUEUE_LIMIT = 64 * 1024;

let reader: ChildProcess;
afterEach(() => {
  reader?.kill('SIGKILL');
});

test('a stalled reader costs a bounded queue, never the event loop; lines beyond are counted and reported once it reads again', async () => {
  // `cat` copies the pipe to its stdout; while nobody reads that, it stops reading ours and the pipe fills.
  reader = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
  killOnExit(reader);
  reader.stdout!.pause();
  const fd = (reader.stdin as unknown as Socket & { _handle: { fd: number } })._handle.fd;
  const destination = new LogDestination(fd, QUEUE_LIMIT);

  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const line = `${JSON.stringify({ level: 30, msg: 'x'.repeat(200) })}\n`;
  for (let i = 0; i < 5_000; i++) {
    destination.write(line);
    if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  // 1 MB written into a pipe nobody drains: the kernel and the queue hold what they may, the rest is dropped.
  expect(destination.pendingBytes).toBeLessThanOrEqual(QUEUE_LIMIT + line.length);
  expect(destination.dropped).toBeGreaterThan(1_000);
  // The loop kept turning all along.
  expect(ticks).toBeGreaterThan(5);
  clearInterval(ticker);
  // A flush with a reader that does not read gives up at its timeout.
  const flushStarted = Date.now();
  await destination.flush(300);
  expect(Date.now() - flushStarted).toBeLessThan(2_000);

  // The reader reads again: the queue drains, and one line says how many were lost.
  let output = '';
  reader.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  reader.stdout!.resume();
  await destination.flush(10_000);
  expect(destination.pendingBytes).toBe(0);
  destination.write(line);
  await eventually(() => output.includes('"event":"signalr.log.dropped"'), 'the dropped-lines notice', 10_000);
  const notice = output.split('\n').find((entry) => entry.includes('signalr.log.dropped'))!;
  expect(JSON.parse(notice)).toMatchObject({ level: 40, event: 'signalr.log.dropped' });
  expect(JSON.parse(notice).dropped).toBeGreaterThan(1_000);
}, 30_000);

test('a reader that is gone ends logging: later lines are dropped at once and a flush does not wait', async () => {
  reader = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] });
  killOnExit(reader);
  const fd = (reader.stdin as unknown as Socket & { _handle: { fd: number } })._handle.fd;
  const destination = new LogDestination(fd, QUEUE_LIMIT);
  reader.kill('SIGKILL');
  await new Promise((resolve) => reader.once('exit', resolve));
  for (let i = 0; i < 100; i++) destination.write('{"level":30,"msg":"into the void"}\n');
  await eventually(() => destination.pendingBytes === 0, 'the queue given up');
  expect(destination.dropped).toBeGreaterThanOrEqual(100);
  const started = Date.now();
  await destination.flush(5_000);
  expect(Date.now() - started).toBeLessThan(1_000);
});
