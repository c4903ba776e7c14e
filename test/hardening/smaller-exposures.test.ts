/**
 * The smaller exposures: secrets in percent-encoded query names and in Fastify's not-found line stay out of the
 * log; negotiations nobody uses cannot keep a full server full; `allowedOrigins: '*'` is refused beside a cookie
 * session plugin. Against the chat sample in its own process where the question is what it logs or answers.
 */
import Fastify from 'fastify';
import { fastifySignalR, Hub } from '../../src';
import { ClientPool } from '../support/clients';
import { ServerProcess } from '../support/server-process';

class NullHub extends Hub {}

describe('request logs', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await ServerProcess.start('request-logs', { LOG_REQUESTS: 'true', LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    await server.stop();
  });

  test('carry no token: not under percent-encoded names the query parser decodes, nor in the not-found line', async () => {
    await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1&access%5Ftoken=SECRET-ONE`, { method: 'POST' });
    await fetch(`${server.hubUrl}?%69d=SECRET-TWO`);
    await fetch(`${server.hubUrl}?ID=SECRET-THREE`);
    const missing = await fetch(`${server.url}/chathub-typo/negotiate?access_token=SECRET-FOUR`, { method: 'POST' });
    expect(missing.status).toBe(404);
    const lines = () => server.logLines().filter((line) => JSON.stringify(line).includes('[redacted]'));
    for (let i = 0; i < 50 && !server.logLines().some((line) => line.msg?.includes('not found')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(server.logLines().find((line) => line.msg.includes('not found'))?.msg).toBe(
      'Route POST:/chathub-typo/negotiate?access_token=[redacted] not found',
    );
    expect(lines().length).toBeGreaterThanOrEqual(4);
    expect(server.log).not.toMatch(/SECRET-(ONE|TWO|THREE|FOUR)/);
  });
});

describe('maximumConnections', () => {
  let server: ServerProcess;
  const pool = new ClientPool(() => server.hubUrl);
  beforeAll(async () => {
    server = await ServerProcess.start('maximum-connections', { SIGNALR_MAXIMUM_CONNECTIONS: '2' });
  });
  afterAll(async () => {
    await pool.stopAll();
    await server.stop();
  });

  const negotiate = () => fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });

  test('negotiations nobody uses give their place to a newcomer; started connections do not', async () => {
    // Someone fills the server with negotiations it never uses...
    const unused = [await negotiate(), await negotiate()];
    expect(unused.map((response) => response.status)).toEqual([200, 200]);
    // ...and a real client still gets in, twice.
    const first = await pool.connect();
    const second = await pool.connect();
    expect(await first.connection.invoke('Echo', 1)).toBe(1);
    expect(await second.connection.invoke('Echo', 2)).toBe(2);
    // The evicted negotiation is gone.
    const { connectionToken } = (await unused[0].json()) as { connectionToken: string };
    expect((await fetch(`${server.hubUrl}?id=${connectionToken}`)).status).toBe(404);
    // Two started connections: the server is full.
    const refused = await negotiate();
    expect(refused.status).toBe(503);
  });
});

test("allowedOrigins '*' beside a cookie session plugin stops the server from starting", async () => {
  const app = Fastify();
  // What @fastify/session and @fastify/secure-session do: a `session` on every request.
  app.decorateRequest('session', null);
  await app.register(fastifySignalR, { hubs: [{ path: '/hub', hub: NullHub }], allowedOrigins: '*' });
  await expect(app.ready()).rejects.toThrow("allowedOrigins '*' with a cookie session plugin");
  await app.close();

  const tokens = Fastify();
  await tokens.register(fastifySignalR, { hubs: [{ path: '/hub', hub: NullHub }], allowedOrigins: '*' });
  await expect(tokens.ready()).resolves.toBeDefined();
  await tokens.close();
});
