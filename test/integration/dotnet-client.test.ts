/**
 * The official .NET client of four generations — `Microsoft.AspNetCore.SignalR.Client` 1.2.14, 6.0.1, 8.0.34 and
 * 10.0.15, from NuGet — against our server, and against the ASP.NET Core reference server in the same process, on
 * every transport and hub protocol the generation has (MessagePack from 8.0 on in this set): the chat contract
 * (results, routing, users, errors with .NET's texts, streams both ways with cancellation, client results from 7.0,
 * SendValues' value kinds read back as .NET types) must look the same on both servers. On ours only: a JWT-protected
 * hub through `AccessTokenProvider`, `WithStatefulReconnect()` (8.0+) across a cut socket, and .NET and JavaScript
 * clients in one group. And the low-level connection (`HttpConnection`, no hub protocol) against a raw endpoint on
 * both: ASP.NET Core's `MapConnectionHandler<EchoConnectionHandler>("/echo")` and our `connectionHandlers` option.
 *
 * One driver process per generation (`test/dotnet-client/Program.cs`) runs every check and prints one JSON line per
 * check; this file asserts them.
 */
import fastifyJwt from '@fastify/jwt';
import * as signalR from '@microsoft/signalr';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ChatHub } from '../../samples/chat/chat-hub';
import { fastifySignalR, Hub, type ConnectionContext } from '../../src/index';
import { ClientPool, type TestClient } from '../support/clients';
import {
  DOTNET_CLIENT_VERSIONS,
  dotnetAvailable,
  runDotnetClient,
  type DotnetClientVersion,
  type DriverLine,
} from '../support/dotnet-client';
import { startReferenceServer, type ReferenceServer } from '../support/dotnet-reference';
import { listen, startChatServer, type RunningServer } from '../support/servers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

jest.setTimeout(300_000);

const TRANSPORTS = ['WebSockets', 'ServerSentEvents', 'LongPolling'];
const MIXED_ROOM = 'dotnet-and-js';

/** The checks each generation runs against both servers, by what it can do. */
function contractChecks(version: DotnetClientVersion): string[] {
  const major = Number.parseInt(version, 10);
  return [
    'start',
    'echo',
    'who am I',
    'all',
    'groups',
    'users',
    'others',
    'errors',
    'values',
    'server stream',
    'server stream cancelled',
    ...(major >= 3 ? ['client stream', 'client stream as IAsyncEnumerable', 'client stream cancelled'] : []),
    ...(major >= 7 ? ['client result'] : []),
  ];
}

function protocolsOf(version: DotnetClientVersion): string[] {
  return Number.parseInt(version, 10) >= 8 ? ['json', 'messagepack'] : ['json'];
}

/** The transport × protocol pairs a client uses: MessagePack is binary, which Server-Sent Events cannot carry. */
function combinations(protocols: readonly string[]): Array<[string, string]> {
  return TRANSPORTS.flatMap((transport) =>
    protocols
      .filter((protocol) => !(protocol === 'messagepack' && transport === 'ServerSentEvents'))
      .map((protocol): [string, string] => [transport, protocol]),
  );
}

/**
 * The raw endpoint of the reference server (`test/dotnet-reference/EchoConnectionHandler.cs`), ours: every chunk
 * comes back; "bye" ends the connection; `?binary=true` makes WebSocket frames Binary.
 */
async function echo(connection: ConnectionContext): Promise<void> {
  if ((connection.request.query as Record<string, unknown>).binary === 'true') connection.transferFormat = 'Binary';
  for await (const chunk of connection) {
    if (chunk.toString('utf8') === 'bye') return;
    connection.send(chunk);
  }
}

class WhoHub extends Hub {
  whoAmI(): string | null {
    return this.context.userIdentifier ?? null;
  }
}

const withDotnet = dotnetAvailable() ? describe : describe.skip;
if (!dotnetAvailable())
  process.stdout.write('dotnet-client.test.ts: skipped — no `dotnet` on PATH (the .NET SDK builds the clients)\n');

withDotnet('the official .NET client', () => {
  let reference: ReferenceServer;
  let chat: RunningServer;
  let secure: RunningServer;
  let proxy: TcpProxy;
  let token: string;
  const pool = new ClientPool(() => chat.hubUrl);
  let jsClient: TestClient;

  beforeAll(async () => {
    // The reference server with MessagePack (its protocol package from NuGet), as ours offers it.
    [reference, chat] = await Promise.all([
      startReferenceServer({ MESSAGEPACK: 'true' }),
      startChatServer({ allowStatefulReconnects: true, connectionHandlers: [{ path: '/echo', onConnected: echo }] }),
    ]);
    proxy = await startTcpProxy(Number(new URL(chat.url).port));

    const app: FastifyInstance = Fastify({ logger: false });
    await app.register(fastifyJwt, { secret: 'a test secret for the .NET clients, HS256' });
    token = app.jwt.sign({ sub: 'dotnet-user' });
    await app.register(fastifySignalR, {
      hubs: [
        {
          path: '/secure',
          hub: WhoHub,
          onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
            try {
              await request.jwtVerify();
            } catch {
              return reply.code(401).send();
            }
          },
        },
      ],
    });
    // Cuts the proxied sockets as a network would, then sends to the room while the client has no socket.
    app.post<{ Querystring: { room: string } }>('/test/cut', async (request) => {
      const cut = proxy.cut();
      for (let i = 1; i <= 3; i++)
        await chat.app.signalr.hub(ChatHub).clients.group(request.query.room).send('ReceiveMessage', 'server', `s${i}`);
      return { cut };
    });
    secure = await listen(app, '/secure');

    // The JavaScript side of the mixed group answers every .NET message it gets there.
    jsClient = await pool.connect({ transport: signalR.HttpTransportType.WebSockets });
    jsClient.connection.on('ReceiveMessage', (user: string, message: string) => {
      if (user === 'dotnet') void jsClient.connection.invoke('SendToRoom', MIXED_ROOM, 'js', `re: ${message}`);
    });
    await jsClient.connection.invoke('JoinRoom', MIXED_ROOM);
  });

  afterAll(async () => {
    await pool.stopAll();
    await Promise.allSettled([reference?.stop(), chat?.close(), secure?.close(), proxy?.close()]);
  });

  describe.each(DOTNET_CLIENT_VERSIONS)('%s', (version) => {
    let lines: DriverLine[];
    const find = (server: string, transport: string, protocol: string, check: string): DriverLine | undefined =>
      lines.find(
        (line) =>
          line.server === server && line.transport === transport && line.protocol === protocol && line.check === check,
      );
    const value = (transport: string, protocol: string, check: string): unknown => {
      const line = find('ours', transport, protocol, check);
      if (line === undefined) throw new Error(`no '${check}' line for ${transport}/${protocol}`);
      if (line.error !== undefined) throw new Error(`'${check}' failed over ${transport}/${protocol}: ${line.error}`);
      return line.value;
    };

    beforeAll(async () => {
      lines = await runDotnetClient(version, {
        SERVERS: `reference=${reference.url},ours=${chat.url}`,
        EXTRAS_SERVER: 'ours',
        PROXY_URL: proxy.url,
        CUT_URL: `${secure.url}/test/cut`,
        SECURE_URL: secure.url,
        JWT: token,
        MIXED_ROOM,
        RAW_PATH: '/echo',
      });
    }, 300_000);

    test('is the generation it claims, with the hub protocols it supports', () => {
      const client = lines.find((line) => line.check === 'client')?.value as { version: string; protocols: string[] };
      expect(client.version.split('.')[0]).toBe(version.split('.')[0]);
      expect(client.protocols).toEqual(protocolsOf(version));
    });

    test.each(combinations(protocolsOf(version)))(
      'over %s with %s the chat contract looks as on ASP.NET Core',
      (transport, protocol) => {
        const checks = contractChecks(version);
        const ours = checks.map((check) => ({ check, ...find('ours', transport, protocol, check) }));
        // Every check ran and none failed on our side.
        expect(ours.filter((line) => line.error !== undefined || line.value === undefined)).toEqual([]);
        const theirs = checks.map((check) => ({ check, ...find('reference', transport, protocol, check) }));
        expect(ours.map(({ check, value, error }) => ({ check, value, error }))).toEqual(
          theirs.map(({ check, value, error }) => ({ check, value, error })),
        );
        // What both servers answered, spelled out.
        expect(value(transport, protocol, 'echo')).toEqual(['héllo ✓', 42, 5_000_000_000, 3.5, true, null, [1, 2, 3]]);
        expect(value(transport, protocol, 'groups')).toEqual({ joined: true, afterLeaving: false });
        expect(value(transport, protocol, 'users')).toEqual(['me: to my user', 'me: to my users']);
        expect(value(transport, protocol, 'others')).toBe(false);
        expect(value(transport, protocol, 'errors')).toEqual([
          "HubException: An unexpected error occurred invoking 'Fail' on the server. HubException: it went wrong",
          "HubException: An unexpected error occurred invoking 'Crash' on the server.",
          "HubException: Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
          "HubException: Failed to invoke 'Echo' due to an error on the server.",
          "HubException: Failed to invoke 'JoinRoom' due to an error on the server.",
        ]);
        expect(value(transport, protocol, 'values')).toEqual([
          'Int32 42',
          'Int32 -1',
          'Int32 300',
          'Int32 70000',
          'Int64 5000000000',
          'Double 3.5',
          'Boolean True',
          'null',
          'String héllo ✓',
          'Byte[] 0001FEFF',
          'DateTime 2020-01-02T03:04:05Z Utc',
          'Shape a=1 b=[1,2]',
        ]);
        expect(value(transport, protocol, 'server stream')).toEqual([0, 1, 2, 3, 4]);
        expect(value(transport, protocol, 'server stream cancelled')).toMatchObject({
          first: [0, 1, 2],
          fewerThanAll: true,
          after: 'after the cancel',
        });
        if (checks.includes('client stream')) {
          expect(value(transport, protocol, 'client stream')).toBe(5050);
          expect(value(transport, protocol, 'client stream as IAsyncEnumerable')).toBe(6_000_000_003);
        }
        if (checks.includes('client result')) {
          expect(value(transport, protocol, 'client result')).toEqual([
            'the .NET client answers question',
            'the .NET client answers question',
          ]);
        }
      },
    );

    test.each(TRANSPORTS)(
      'over %s the low-level connection to a raw endpoint sees what it sees on MapConnectionHandler',
      (transport) => {
        const checks = transport === 'ServerSentEvents' ? ['raw text'] : ['raw text', 'raw binary'];
        const observe = (server: string) =>
          checks.map((check) => {
            const line = find(server, transport, 'json', check);
            return { check, value: line?.value, error: line?.error };
          });
        expect(observe('ours')).toEqual(observe('reference'));
        expect(value(transport, 'json', 'raw text')).toEqual({
          hasId: true,
          echoed: 'héllo, raw ✓',
          ended: 'ended by the server',
        });
        if (transport !== 'ServerSentEvents')
          expect(value(transport, 'json', 'raw binary')).toEqual({
            echoed: '0001' + '1EFEFF',
            ended: 'ended by the server',
          });
      },
    );

    test.each(combinations(protocolsOf(version)))(
      'over %s with %s a JWT hub, and a group with a JavaScript client',
      (transport, protocol) => {
        expect(value(transport, protocol, 'access token')).toBe('dotnet-user');
        expect(value(transport, protocol, 'no access token')).toBe('refused with 401');
        const text = `hello from .NET over ${transport}/${protocol}`;
        expect(value(transport, protocol, 'mixed group')).toEqual([`dotnet: ${text}`, `js: re: ${text}`]);
      },
    );

    // Stateful reconnect came with 8.0: the older generations have no such option to test.
    if (Number.parseInt(version, 10) >= 8)
      test.each(protocolsOf(version))(
        'WithStatefulReconnect() over WebSockets with %s: a cut socket loses and repeats nothing',
        (protocol) => {
          const expected = [
            ...Array.from({ length: 10 }, (_, i) => `me: m${i + 1}`),
            'server: s1',
            'server: s2',
            'server: s3',
            ...Array.from({ length: 10 }, (_, i) => `me: m${i + 11}`),
          ];
          const { cutSockets, ...observed } = value('WebSockets', protocol, 'stateful reconnect') as {
            cutSockets: number;
          };
          // The WebSocket (and the negotiate's keep-alive connection) went through the proxy and were cut.
          expect(cutSockets).toBeGreaterThanOrEqual(1);
          expect(observed).toEqual({
            messages: expected,
            sameConnection: true,
            state: 'Connected',
            reconnecting: 0,
          });
        },
      );
  });
});
