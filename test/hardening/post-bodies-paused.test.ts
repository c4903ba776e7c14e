/**
 * A long-polling connection whose hub input is paused reads no more POSTs. Against the chat sample on a Redis
 * backplane in its own process: the connection's one invocation slot is held by `AddToRoom` of a connection no
 * server owns (it waits for a group-command ack that never comes), so its message loop waits and the hub stops
 * taking its input; fifty concurrent 1 MiB POSTs then wait unread instead of being taken into memory, while a
 * well-behaved official client is served.
 */
import { Agent, request as httpRequest } from 'node:http';
import { ClientPool } from '../support/clients';
import { resetPeakMemory, residentMemory } from '../support/os';
import { RedisServer } from '../support/redis-server';
import { ServerProcess } from '../support/server-process';

const RS = '\u001e';
const MiB = 1024 * 1024;

let redis: RedisServer;
let server: ServerProcess;
const pool = new ClientPool(() => server.hubUrl);
const agent = new Agent({ keepAlive: true, maxSockets: 128 });

beforeAll(async () => {
  redis = await RedisServer.start();
  server = await ServerProcess.start('post-bodies-paused', { REDIS_URL: redis.url });
});

afterAll(async () => {
  await pool.stopAll();
  agent.destroy();
  await server?.stop();
  await redis?.stop();
});

function send(method: string, path: string, body?: Buffer | string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${server.url}${path}`, { method, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
    });
    // Answered before its body was read (the connection is gone), a POST may see its socket closed mid-upload.
    request.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve({ status: 0, body: '' }) : reject(error),
    );
    request.end(body);
  });
}

test('a long-polling connection whose hub input is paused leaves later POSTs unread: 50 × 1 MiB wait, memory stays flat', async () => {
  const bystander = await pool.connect();
  const { connectionToken: token } = JSON.parse((await send('POST', '/chathub/negotiate?negotiateVersion=1')).body) as {
    connectionToken: string;
  };
  expect((await send('GET', `/chathub?id=${token}`)).status).toBe(200);
  expect((await send('POST', `/chathub?id=${token}`, `{"protocol":"json","version":1}${RS}`)).status).toBe(200);
  expect((await send('GET', `/chathub?id=${token}`)).body).toBe(`{}${RS}`);
  // The slot is taken by a group add that waits for an owner's ack (30 s by default)...
  const hold = `{"type":1,"invocationId":"1","target":"AddToRoom","arguments":["no-such-connection","room"]}${RS}`;
  expect((await send('POST', `/chathub?id=${token}`, hold)).status).toBe(200);
  // ...so invocations behind it wait, and past 64 KiB of them the hub stops taking input.
  const echo = `{"type":1,"target":"Echo","arguments":["${'x'.repeat(30_000)}"]}${RS}`;
  const body = Buffer.from(echo.repeat(Math.floor(MiB / echo.length)));
  resetPeakMemory(server.pid);
  const before = residentMemory(server.pid);
  const answered: number[] = [];
  const sends = Array.from({ length: 50 }, () =>
    send('POST', `/chathub?id=${token}`, body).then((response) => {
      answered.push(response.status);
      return response;
    }),
  );
  for (let i = 0; i < 20; i++) {
    expect(await bystander.connection.invoke('Echo', i)).toBe(i);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The first POST reaches the hub's queue before the loop waits (one body, Fastify's bodyLimit at most); every
  // later one waits unanswered, its body unread, until the hub takes input again.
  expect(answered.length).toBeLessThanOrEqual(1);
  // Taken in, 50 MiB of bodies would raise the peak by 50 MiB and more.
  expect(residentMemory(server.pid).peak - before.rss).toBeLessThan(25 * MiB);

  // Ending the connection answers every waiting POST — 404, the connection is gone (a client still uploading may
  // see its socket closed instead) — and the server goes on.
  expect((await send('DELETE', `/chathub?id=${token}`)).status).toBe(202);
  await Promise.all(sends);
  expect(answered).toHaveLength(50);
  expect(answered.slice(1).every((status) => status === 404 || status === 0)).toBe(true);
  expect(await bystander.connection.invoke('Echo', 'after')).toBe('after');
}, 60_000);
