/**
 * The management API on one server without a backplane (a real listening Fastify, the official client): the
 * audience a token must name — the public URL, from Azure's connection-string `Endpoint`, the `publicEndpoint`
 * option or trusted forwarded headers — sends and client results on the in-memory hub, the invoke timeout, and the
 * options it refuses.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HttpTransportType } from '@microsoft/signalr';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  ConfigError,
  describeConfig,
  fastifySignalR,
  Hub,
  loadServerConfig,
  serverConfigOptions,
  signalrOptionsFrom,
  type SignalROptions,
} from '../../src/index';
import { ClientPool, type TestClient } from '../support/clients';
import { jwt, tokenFor } from '../support/management-token';

class NoticeHub extends Hub {}

const KEY = 'in-memory-test-key';
const apps: FastifyInstance[] = [];
const pools: ClientPool[] = [];

async function start(
  management: SignalROptions['management'],
  fastifyOptions: { trustProxy?: boolean } = {},
): Promise<{ base: string; client: TestClient }> {
  const app = Fastify(fastifyOptions);
  apps.push(app);
  await app.register(fastifySignalR, {
    hubs: [{ path: '/notices', hub: NoticeHub, name: 'Notices', userIdProvider: () => 'ann' }],
    ...(management !== undefined && { management }),
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const pool = new ClientPool(() => `${base}/notices`);
  pools.push(pool);
  const client = await pool.connect(
    {
      transport: HttpTransportType.WebSockets,
      handlers: { Confirm: (text: unknown) => `confirmed ${String(text)}`, Hang: () => new Promise(() => undefined) },
    },
    ['Notice'],
  );
  return { base, client };
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.stopAll()));
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const send = (url: string, authorization: string) =>
  fetch(url, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'Notice', arguments: ['hi'] }),
  });

test("with Azure's connection string, the audience is the Endpoint's URL, not the address connected to", async () => {
  const { base, client } = await start({
    accessKey: `Endpoint=https://signalr.example.test;AccessKey=${KEY};Version=1.0;`,
  });
  const path = '/api/v1/hubs/notices';
  expect((await send(`${base}${path}`, `Bearer ${tokenFor(KEY, `${base}${path}`)}`)).status).toBe(401);
  expect((await send(`${base}${path}`, `Bearer ${tokenFor(KEY, `https://signalr.example.test${path}`)}`)).status).toBe(
    202,
  );
  expect(await client.inbox('Notice').waitFor(1)).toEqual([['hi']]);
});

test('publicEndpoint names the audience behind a proxy that forwards to this server', async () => {
  const { base, client } = await start({ accessKey: KEY, publicEndpoint: 'https://push.example.test' });
  const path = '/api/hubs/Notices/:send';
  const url = `${base}${path}?api-version=2024-12-01`;
  expect((await send(url, `Bearer ${tokenFor(KEY, `${base}${path}`)}`)).status).toBe(401);
  expect((await send(url, `Bearer ${tokenFor(KEY, `https://push.example.test${path}`)}`)).status).toBe(202);
  await client.inbox('Notice').waitFor(1);
});

test("with Fastify's trustProxy, the forwarded protocol and host make the audience; without it they are ignored", async () => {
  const path = '/api/v1/hubs/Notices/users/ann';
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example.test' };
  const token = `Bearer ${tokenFor(KEY, `https://public.example.test${path}`)}`;
  const post = (base: string) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'application/json', ...forwarded },
      body: JSON.stringify({ target: 'Notice', arguments: ['forwarded'] }),
    });
  const trusted = await start({ accessKey: KEY }, { trustProxy: true });
  expect((await post(trusted.base)).status).toBe(202);
  expect(await trusted.client.inbox('Notice').waitFor(1)).toEqual([['forwarded']]);
  const untrusted = await start({ accessKey: KEY });
  expect((await post(untrusted.base)).status).toBe(401);
});

test(':invoke returns a client result on the in-memory hub, and answers 504 when the client does not answer in time', async () => {
  const { base, client } = await start({ accessKey: KEY, invokeTimeoutMs: 300 });
  const id = client.connection.connectionId!;
  const invoke = async (target: string) => {
    const url = `${base}/api/hubs/notices/connections/${id}/:invoke?api-version=2024-12-01`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor(KEY, url)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target, arguments: ['order 7'] }),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  expect(await invoke('Confirm')).toEqual({ status: 200, body: { result: 'confirmed order 7' } });
  expect(await invoke('Hang')).toEqual({
    status: 504,
    body: {
      code: 'Error.504',
      level: 'Error',
      scope: 'Connection',
      errorKind: 'Unknown',
      message: 'The client did not answer within 300 ms.',
      isSuccess: false,
    },
  });
});

test('DELETE closes a connection of this server with the reason as its error', async () => {
  const { base, client } = await start({ accessKey: KEY });
  const url = `${base}/api/v1/hubs/Notices/connections/${client.connection.connectionId!}`;
  const response = await fetch(`${url}?reason=${encodeURIComponent('account closed')}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${tokenFor(KEY, url)}` },
  });
  expect(response.status).toBe(200);
  expect((await client.closed)?.message).toBe('Server returned an error on close: account closed');
});

test('a token signed with the base64 form of the key, or whose exp is a string, is refused', async () => {
  const { base } = await start({ accessKey: KEY });
  const url = `${base}/api/v1/hubs/Notices`;
  const exp = Math.floor(Date.now() / 1000) + 60;
  expect((await send(url, `Bearer ${jwt(Buffer.from(KEY).toString('base64'), { aud: url, exp })}`)).status).toBe(401);
  expect((await send(url, `Bearer ${jwt(KEY, { aud: url, exp: String(exp) })}`)).status).toBe(401);
});

test('the management options are checked at registration', async () => {
  const app = Fastify();
  apps.push(app);
  await expect(
    app.register(fastifySignalR, {
      hubs: [{ path: '/n', hub: NoticeHub }],
      management: { accessKey: 'Endpoint=https://x.test;AccessKey=;Version=1.0;' },
    }),
  ).rejects.toThrow('The connection string in management.accessKey has an empty AccessKey.');
  const other = Fastify();
  apps.push(other);
  await expect(
    other.register(fastifySignalR, {
      hubs: [{ path: '/n', hub: NoticeHub }],
      management: { accessKey: KEY, publicEndpoint: 'ftp://x' },
    }),
  ).rejects.toThrow(/management/);
});

test('SIGNALR_MANAGEMENT_ACCESS_KEY turns the API on in the server configuration, and the key is never shown', () => {
  const config = loadServerConfig({
    env: { SIGNALR_MANAGEMENT_ACCESS_KEY: 'Endpoint=https://x.test;AccessKey=s3cret;Version=1.0;' },
  });
  expect(signalrOptionsFrom(config).management).toEqual({
    accessKey: 'Endpoint=https://x.test;AccessKey=s3cret;Version=1.0;',
  });
  expect(describeConfig(serverConfigOptions, config).managementAccessKey).toBe('*****');
  expect(signalrOptionsFrom(loadServerConfig({ env: {} })).management).toBeUndefined();
  // A bad value is named, never shown.
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'management-config-')), 'config.json');
  writeFileSync(file, JSON.stringify({ managementAccessKey: '' }));
  let error: unknown;
  try {
    loadServerConfig({ env: {}, file });
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).toContain(
    `managementAccessKey in ${file}: must not be empty; got a value not shown`,
  );
});
