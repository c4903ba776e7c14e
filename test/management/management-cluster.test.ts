/**
 * The management REST API (Azure SignalR Service's data-plane routes) of our server A, in a cluster with our server B
 * and an ASP.NET Core reference server on one redis-server, with official JSON and MessagePack clients on all three
 * (test/support/mixed-cluster.ts): every route with a valid token and what its clients see, each kind of bad token
 * refused with 401, bad names and bodies answered 400 with Azure's `errorKind`, and the OpenAPI document listing
 * every route.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ClientPool, eventually, type TestClient } from '../support/clients';
import { describeWithDotnet } from '../support/dotnet-reference';
import { bearer, jwt, tokenFor } from '../support/management-token';
import { MIXED_CLIENT_NAMES, MIXED_HUB, MixedCluster, once, type MixedClientName } from '../support/mixed-cluster';

jest.setTimeout(60_000);

const KEY = 'management-test-key-0123456789abcdef';
const ACK_TIMEOUT_MS = 1000;
const V2024 = 'api-version=2024-12-01';

let cluster: MixedCluster;
let api: string;
const extraPools: ClientPool[] = [];

/** Calls server A's API with a valid token for the URL. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const url = `${api}${path}`;
  const response = await fetch(url, {
    method,
    headers: { ...bearer(KEY, url), ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const message = (text: string) => ({ target: 'ReceiveMessage', arguments: ['rest', text] });
const hub = encodeURIComponent(MIXED_HUB);
const id = (name: MixedClientName) => encodeURIComponent(cluster.idOf(name));

/** An extra client (for the closing routes), on the server of `like`, with user `user`. */
async function extraClient(like: MixedClientName, user: string): Promise<TestClient> {
  const pool = new ClientPool(() => cluster.hubUrlOf(like));
  extraPools.push(pool);
  const client = await pool.connect({
    transport: HttpTransportType.WebSockets,
    query: `user=${user}`,
    ...(like.endsWith('Pack') && { protocol: new MessagePackHubProtocol() }),
  });
  await client.connection.invoke('WhoAmI');
  return client;
}

describeWithDotnet(
  'the management REST API in a cluster of two fastify-signalr servers and an ASP.NET Core server',
  () => {
    beforeAll(async () => {
      cluster = await MixedCluster.start({
        SIGNALR_MANAGEMENT_ACCESS_KEY: KEY,
        REDIS_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      });
      api = `${cluster.ours[0].url}/api`;
    }, 180_000);

    afterAll(async () => {
      await Promise.all(extraPools.map((pool) => pool.stopAll()));
      await cluster?.stop();
    }, 60_000);

    const all = MIXED_CLIENT_NAMES;
    const sends: [string, () => string, readonly MixedClientName[]][] = [
      ['POST /v1/hubs/{hub}', () => `/v1/hubs/${hub}`, all],
      [
        'POST /v1/hubs/{hub}?excluded=…',
        () => `/v1/hubs/${hub}?excluded=${id('aPack')}&excluded=${id('dotnetJson')}`,
        ['aJson', 'bJson', 'bPack', 'dotnetPack'],
      ],
      ['POST /v1/hubs/{hub}/users/{user}', () => `/v1/hubs/${hub}/users/carol`, ['bJson', 'dotnetPack']],
      ['POST /v1/hubs/{hub}/groups/{group}', () => `/v1/hubs/${hub}/groups/room-a`, ['aJson', 'bPack', 'dotnetJson']],
      [
        'POST /v1/hubs/{hub}/connections/{connectionId}',
        () => `/v1/hubs/${hub}/connections/${id('dotnetPack')}`,
        ['dotnetPack'],
      ],
      ['POST /hubs/{hub}/:send', () => `/hubs/${hub}/:send?${V2024}`, all],
      [
        'POST /hubs/{hub}/:send?excluded=…',
        () => `/hubs/${hub}/:send?${V2024}&excluded=${id('bJson')}`,
        all.filter((name) => name !== 'bJson'),
      ],
      ['POST /hubs/{hub}/users/{user}/:send', () => `/hubs/${hub}/users/erin/:send?${V2024}`, ['dotnetJson']],
      ['POST /hubs/{hub}/groups/{group}/:send', () => `/hubs/${hub}/groups/room-b/:send?${V2024}`, ['dotnetPack']],
      [
        'POST /hubs/{hub}/groups/{group}/:send?excluded=…',
        () => `/hubs/${hub}/groups/room-a/:send?${V2024}&excluded=${id('aJson')}`,
        ['bPack', 'dotnetJson'],
      ],
      [
        'POST /hubs/{hub}/connections/{connectionId}/:send',
        () => `/hubs/${hub}/connections/${id('bPack')}/:send?${V2024}`,
        ['bPack'],
      ],
    ];

    test.each(sends)(
      '%s answers 202 and reaches exactly its clients on all three servers',
      async (route, path, expected) => {
        const text = `rest ${route}`;
        expect(await call('POST', path(), message(text))).toEqual({ status: 202, body: undefined });
        expect(await cluster.deliveredAfterSettling(text, expected)).toEqual(once(expected));
      },
    );

    test('the hub segment is the hub name as registered, in any case', async () => {
      expect((await call('POST', `/hubs/${hub.toLowerCase()}/:send?${V2024}`, message('lower-case hub'))).status).toBe(
        202,
      );
      expect(await cluster.deliveredAfterSettling('lower-case hub', all)).toEqual(once(all));
    });

    test('existence checks (v1 GET, 2024-12-01 HEAD) answer 200 or 404 for the connections of this server', async () => {
      const checks: [string, string, number][] = [
        ['GET', `/v1/hubs/${hub}/connections/${id('aJson')}`, 200],
        ['GET', `/v1/hubs/${hub}/connections/${id('bJson')}`, 404],
        ['GET', `/v1/hubs/${hub}/users/alice`, 200],
        ['GET', `/v1/hubs/${hub}/users/carol`, 404],
        ['GET', `/v1/hubs/${hub}/groups/room-a`, 200],
        ['GET', `/v1/hubs/${hub}/groups/room-b`, 404],
        ['HEAD', `/hubs/${hub}/connections/${id('aPack')}?${V2024}`, 200],
        ['HEAD', `/hubs/${hub}/connections/nobody?${V2024}`, 404],
        ['HEAD', `/hubs/${hub}/users/bob?${V2024}`, 200],
        ['HEAD', `/hubs/${hub}/users/erin?${V2024}`, 404],
        ['HEAD', `/hubs/${hub}/groups/room-a?${V2024}`, 200],
        ['HEAD', `/hubs/${hub}/groups/nothing?${V2024}`, 404],
      ];
      const answers = await Promise.all(
        checks.map(async ([method, path]) => [method, path, (await call(method, path)).status]),
      );
      expect(answers).toEqual(checks);
    });

    test('the health checks answer 200 without a token', async () => {
      expect((await fetch(`${api}/v1/health`)).status).toBe(200);
      expect((await fetch(`${api}/health?${V2024}`, { method: 'HEAD' })).status).toBe(200);
    });

    test.each([
      ['v1', (group: string, name: MixedClientName) => `/v1/hubs/${hub}/groups/${group}/connections/${id(name)}`],
      ['v1 alias', (group: string, name: MixedClientName) => `/v1/hubs/${hub}/connections/${id(name)}/groups/${group}`],
      [
        '2024-12-01',
        (group: string, name: MixedClientName) => `/hubs/${hub}/groups/${group}/connections/${id(name)}?${V2024}`,
      ],
    ])(
      'PUT and DELETE a connection of the .NET server in a group (%s): acknowledged, and the next group send follows',
      async (version, path) => {
        const group = `rest-${version.replace(/\W/g, '')}`;
        expect(await call('PUT', path(group, 'dotnetJson'))).toEqual({ status: 200, body: undefined });
        await call('POST', `/hubs/${hub}/groups/${group}/:send?${V2024}`, message(`${group} after PUT`));
        expect(await cluster.deliveredAfterSettling(`${group} after PUT`, ['dotnetJson'])).toEqual({ dotnetJson: 1 });
        expect(await call('DELETE', path(group, 'dotnetJson'))).toEqual({ status: 200, body: undefined });
        await call('POST', `/hubs/${hub}/groups/${group}/:send?${V2024}`, message(`${group} after DELETE`));
        expect(await cluster.deliveredAfterSettling(`${group} after DELETE`, [])).toEqual({});
      },
    );

    test('PUT of a connection no server owns answers 404 once no ack came', async () => {
      const answer = await call('PUT', `/hubs/${hub}/groups/room-a/connections/nobody?${V2024}`);
      expect(answer).toEqual({
        status: 404,
        body: {
          code: 'Error.NotFound',
          level: 'Error',
          scope: 'Connection',
          errorKind: 'NotExisted',
          message: "No server acknowledged connection 'nobody': it does not exist.",
          isSuccess: false,
        },
      });
    });

    test('DELETE …/connections/{connectionId}/groups removes a connection of this server from all its groups', async () => {
      await call('PUT', `/hubs/${hub}/groups/temp-1/connections/${id('aPack')}?${V2024}`);
      await call('PUT', `/hubs/${hub}/groups/temp-2/connections/${id('aPack')}?${V2024}`);
      await call('POST', `/hubs/${hub}/groups/temp-1/:send?${V2024}`, message('temp before'));
      expect(await cluster.deliveredAfterSettling('temp before', ['aPack'])).toEqual({ aPack: 1 });
      expect((await call('DELETE', `/hubs/${hub}/connections/${id('aPack')}/groups?${V2024}`)).status).toBe(200);
      await call('POST', `/hubs/${hub}/groups/temp-1/:send?${V2024}`, message('temp after'));
      await call('POST', `/hubs/${hub}/groups/temp-2/:send?${V2024}`, message('temp after'));
      expect(await cluster.deliveredAfterSettling('temp after', [])).toEqual({});
      expect((await call('DELETE', `/hubs/${hub}/connections/${id('bJson')}/groups?${V2024}`)).status).toBe(404);
    });

    test.each(['aJson', 'bPack', 'dotnetJson', 'dotnetPack'] as const)(
      ':invoke returns the answer of %s',
      async (name) => {
        expect(
          await call('POST', `/hubs/${hub}/connections/${id(name)}/:invoke?${V2024}`, {
            target: 'GetAnswer',
            arguments: ['q'],
          }),
        ).toEqual({
          status: 200,
          body: { result: `${name} answers q` },
        });
      },
    );

    test(':invoke of a connection no server owns answers 404', async () => {
      const answer = await call('POST', `/hubs/${hub}/connections/nobody/:invoke?${V2024}`, {
        target: 'GetAnswer',
        arguments: ['q'],
      });
      expect(answer).toEqual({
        status: 404,
        body: {
          code: 'Error.NotFound',
          level: 'Error',
          scope: 'Connection',
          errorKind: 'NotExisted',
          message: "Connection 'nobody' does not exist.",
          isSuccess: false,
        },
      });
    });

    test.each([
      ['v1', (connection: string) => `/v1/hubs/${hub}/connections/${connection}?reason=bye`],
      ['2024-12-01', (connection: string) => `/hubs/${hub}/connections/${connection}?${V2024}&reason=bye`],
    ])(
      'DELETE (%s) closes a connection on another server — ours and .NET — with the reason as its error',
      async (_version, path) => {
        const onB = await extraClient('bJson', 'closing-b');
        const onDotnet = await extraClient('dotnetPack', 'closing-dotnet');
        for (const client of [onB, onDotnet]) {
          expect((await call('DELETE', path(encodeURIComponent(client.connection.connectionId!)))).status).toBe(200);
          expect((await client.closed)?.message).toBe('Server returned an error on close: bye');
        }
      },
    );

    test("POST :closeConnections closes a group's and a user's connections on every server, except the excluded", async () => {
      const groupMembers = [
        await extraClient('bPack', 'g1'),
        await extraClient('dotnetJson', 'g2'),
        await extraClient('aJson', 'g3'),
      ];
      const kept = await extraClient('dotnetPack', 'g4');
      for (const client of [...groupMembers, kept]) await client.connection.invoke('JoinRoom', 'doomed');
      const keptId = encodeURIComponent(kept.connection.connectionId!);
      expect(
        (await call('POST', `/hubs/${hub}/groups/doomed/:closeConnections?${V2024}&excluded=${keptId}`)).status,
      ).toBe(204);
      await Promise.all(groupMembers.map((client) => client.closed));

      const users = [await extraClient('dotnetJson', 'zed'), await extraClient('bJson', 'zed')];
      expect((await call('POST', `/hubs/${hub}/users/zed/:closeConnections?${V2024}&reason=off`)).status).toBe(204);
      expect((await Promise.all(users.map((client) => client.closed))).map((error) => error?.message)).toEqual([
        'Server returned an error on close: off',
        'Server returned an error on close: off',
      ]);
      expect(kept.connection.state).toBe('Connected');
    });

    describe('bad requests', () => {
      const invalid = (scope: string, text: string) => ({
        code: 'Error.InvalidRequest',
        level: 'Error',
        scope,
        errorKind: 'Invalid',
        message: text,
        isSuccess: false,
      });

      test.each([
        [
          'a group name over 1024 characters',
          'POST',
          () => `/hubs/${hub}/groups/${'g'.repeat(1025)}/:send?${V2024}`,
          message('x'),
          invalid('Group', 'Group name must be 1 to 1024 characters long.'),
        ],
        [
          'a hub name Azure refuses',
          'POST',
          () => `/hubs/bad-hub!/:send?${V2024}`,
          message('x'),
          invalid('Request', 'Hub name must start with a letter and contain only letters, digits and underscores.'),
        ],
        [
          'a body without a target',
          'POST',
          () => `/hubs/${hub}/:send?${V2024}`,
          { arguments: [] },
          invalid('Request', "The body's 'target' must be a non-empty string."),
        ],
        [
          'arguments that are not an array',
          'POST',
          () => `/v1/hubs/${hub}`,
          { target: 'x', arguments: 'y' },
          invalid('Request', "The body's 'arguments' must be an array."),
        ],
        [
          'an empty excluded id',
          'POST',
          () => `/hubs/${hub}/:send?${V2024}&excluded=`,
          message('x'),
          invalid('Request', "Query parameter 'excluded' has an empty value."),
        ],
        [
          'a 2024-12-01 route without api-version',
          'POST',
          () => `/hubs/${hub}/:send`,
          message('x'),
          invalid('Request', "Query parameter 'api-version' must be '2024-12-01' on this route."),
        ],
      ])('%s answers 400 with errorKind Invalid', async (_what, method, path, body, expected) => {
        expect(await call(method, path(), body)).toEqual({ status: 400, body: expected });
      });

      test('a body that is not JSON answers 400', async () => {
        const answer = await call('POST', `/hubs/${hub}/:send?${V2024}`, '{"target":');
        expect(answer.status).toBe(400);
        expect(answer.body).toMatchObject({ level: 'Error', errorKind: 'Invalid', isSuccess: false });
      });

      test('a hub this server does not serve answers 404', async () => {
        expect(await call('POST', `/hubs/OtherHub/:send?${V2024}`, message('x'))).toEqual({
          status: 404,
          body: {
            code: 'Error.NotFound',
            level: 'Error',
            scope: 'Request',
            errorKind: 'NotExisted',
            message: "No hub named 'OtherHub' is served here.",
            isSuccess: false,
          },
        });
      });
    });

    describe('authentication, as Azure SignalR Service does it', () => {
      const path = () => `/hubs/${hub}/:send?${V2024}`;
      const url = () => `${api}${path()}`;
      const aud = () => url().split('?')[0];
      const now = () => Math.floor(Date.now() / 1000);
      const refusals: [string, () => string | undefined][] = [
        ['no Authorization header', () => undefined],
        ['a scheme other than Bearer', () => `Basic ${Buffer.from('a:b').toString('base64')}`],
        ['a token that is not a JWT', () => 'Bearer not-a-jwt'],
        ['a token signed with another key', () => `Bearer ${tokenFor('another key', url())}`],
        ['an expired token', () => `Bearer ${jwt(KEY, { aud: aud(), exp: now() - 5 })}`],
        ['a token without exp', () => `Bearer ${jwt(KEY, { aud: aud() })}`],
        ['a token not valid yet (nbf)', () => `Bearer ${jwt(KEY, { aud: aud(), exp: now() + 300, nbf: now() + 120 })}`],
        [
          'a token for another URL',
          () => `Bearer ${jwt(KEY, { aud: `${api}/hubs/${hub}/users/x/:send`, exp: now() + 300 })}`,
        ],
        ['a token whose audience keeps the query', () => `Bearer ${jwt(KEY, { aud: url(), exp: now() + 300 })}`],
        [
          'a token with alg none',
          () =>
            `Bearer ${jwt(KEY, { aud: aud(), exp: now() + 300 }, { alg: 'none', typ: 'JWT' })
              .split('.')
              .slice(0, 2)
              .join('.')}.`,
        ],
        [
          'a token with alg none and a signature',
          () => `Bearer ${jwt(KEY, { aud: aud(), exp: now() + 300 }, { alg: 'none', typ: 'JWT' })}`,
        ],
        [
          'a token with alg HS512',
          () => `Bearer ${jwt(KEY, { aud: aud(), exp: now() + 300 }, { alg: 'HS512', typ: 'JWT' })}`,
        ],
      ];

      test.each(refusals)('%s is refused with 401, and nothing is sent', async (what, header) => {
        const value = header();
        const response = await fetch(url(), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(value !== undefined && { authorization: value }) },
          body: JSON.stringify(message(`refused: ${what}`)),
        });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        expect(await cluster.deliveredAfterSettling(`refused: ${what}`, [])).toEqual({});
      });

      test('a token whose audience has a trailing slash is accepted, as Azure ignores it', async () => {
        const response = await fetch(url(), {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${jwt(KEY, { aud: `${aud()}/`, exp: now() + 300 })}`,
          },
          body: JSON.stringify(message('trailing slash')),
        });
        expect(response.status).toBe(202);
      });
    });

    test('the OpenAPI document lists every route, each served', async () => {
      const document = (await (await fetch(`${api}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, unknown>>;
      };
      const listed = Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect(listed.sort()).toEqual(
        [
          'GET /api/v1/health',
          'POST /api/v1/hubs/{hub}',
          'POST /api/v1/hubs/{hub}/users/{user}',
          'POST /api/v1/hubs/{hub}/groups/{group}',
          'POST /api/v1/hubs/{hub}/connections/{connectionId}',
          'GET /api/v1/hubs/{hub}/connections/{connectionId}',
          'DELETE /api/v1/hubs/{hub}/connections/{connectionId}',
          'GET /api/v1/hubs/{hub}/groups/{group}',
          'GET /api/v1/hubs/{hub}/users/{user}',
          'PUT /api/v1/hubs/{hub}/groups/{group}/connections/{connectionId}',
          'DELETE /api/v1/hubs/{hub}/groups/{group}/connections/{connectionId}',
          'PUT /api/v1/hubs/{hub}/connections/{connectionId}/groups/{group}',
          'PUT /api/v1/hubs/{hub}/groups/{group}/users/{user}',
          'DELETE /api/v1/hubs/{hub}/groups/{group}/users/{user}',
          'GET /api/v1/hubs/{hub}/groups/{group}/users/{user}',
          'DELETE /api/v1/hubs/{hub}/users/{user}/groups',
          'DELETE /api/v1/hubs/{hub}/connections/{connectionId}/groups/{group}',
          'HEAD /api/health',
          'POST /api/hubs/{hub}/:send',
          'POST /api/hubs/{hub}/users/{user}/:send',
          'POST /api/hubs/{hub}/groups/{group}/:send',
          'POST /api/hubs/{hub}/connections/{connectionId}/:send',
          'POST /api/hubs/{hub}/:closeConnections',
          'POST /api/hubs/{hub}/groups/{group}/:closeConnections',
          'POST /api/hubs/{hub}/users/{user}/:closeConnections',
          'PUT /api/hubs/{hub}/groups/{group}/connections/{connectionId}',
          'DELETE /api/hubs/{hub}/groups/{group}/connections/{connectionId}',
          'DELETE /api/hubs/{hub}/connections/{connectionId}/groups',
          'DELETE /api/hubs/{hub}/connections/{connectionId}',
          'HEAD /api/hubs/{hub}/connections/{connectionId}',
          'HEAD /api/hubs/{hub}/groups/{group}',
          'HEAD /api/hubs/{hub}/users/{user}',
          'GET /api/hubs/{hub}/groups/{group}/connections',
          'PUT /api/hubs/{hub}/users/{user}/groups/{group}',
          'DELETE /api/hubs/{hub}/users/{user}/groups/{group}',
          'DELETE /api/hubs/{hub}/users/{user}/groups',
          'HEAD /api/hubs/{hub}/users/{user}/groups/{group}',
          'POST /api/hubs/{hub}/connections/{connectionId}/:invoke',
        ].sort(),
      );
      // Each listed route is served: without a token every one but the health checks answers 401, not a router 404.
      for (const entry of listed) {
        const [method, template] = entry.split(' ');
        const path = template
          .replace('{hub}', hub)
          .replace('{group}', 'g')
          .replace('{user}', 'u')
          .replace('{connectionId}', 'c');
        const response = await fetch(`${cluster.ours[0].url}${path}`, { method });
        expect({ entry, status: response.status }).toEqual({ entry, status: path.endsWith('health') ? 200 : 401 });
      }
    });

    // Last: it closes the cluster's own clients.
    test('POST /hubs/{hub}/:closeConnections closes every connection of every server but the excluded', async () => {
      const keep = cluster.idOf('dotnetJson');
      expect(
        (
          await call(
            'POST',
            `/hubs/${hub}/:closeConnections?${V2024}&excluded=${encodeURIComponent(keep)}&reason=maintenance`,
          )
        ).status,
      ).toBe(204);
      const closing = all.filter((name) => name !== 'dotnetJson');
      const errors = await Promise.all(closing.map((name) => cluster.clients[name].closed));
      expect(errors.map((error) => error?.message)).toEqual(
        closing.map(() => 'Server returned an error on close: maintenance'),
      );
      await eventually(() => true, 'settled');
      expect(cluster.clients.dotnetJson.connection.state).toBe('Connected');
    });
  },
);
