/**
 * The ASP.NET SignalR 2.x .NET client (`Microsoft.AspNet.SignalR.Client` 2.4.2, restored from NuGet, on net10.0)
 * against the `ChatHub` that serves Core clients, over each transport it has: results, errors, hub state, server
 * calls, a group shared with a Core client, and a reconnect after a dropped connection that loses nothing.
 */
import path from 'node:path';
import { HubConnectionBuilder, HttpTransportType, type HubConnection } from '@microsoft/signalr';
import { buildDotnetDriver, runDotnet, type DotnetDriverProject } from '../support/dotnet-client';
import { describeWithDotnet } from '../support/dotnet-reference';
import type { RunningServer } from '../support/servers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { startLegacyServer } from './fixtures';

const DRIVER: DotnetDriverProject = {
  dir: path.resolve(__dirname, '..', 'aspnet-dotnet-client'),
  name: 'AspNetClient',
  sources: ['AspNetClient.csproj', 'Program.cs', 'nuget.config'],
  stateDir: path.resolve(__dirname, '..', '..', '.tmp', 'aspnet-dotnet-client'),
};

interface DriverLine {
  readonly transport: string;
  readonly check: string;
  readonly value?: unknown;
  readonly error?: string;
}

describeWithDotnet('the ASP.NET SignalR 2.x .NET client', () => {
  let server: RunningServer;
  let proxy: TcpProxy;
  let core: HubConnection;
  let lines: DriverLine[];

  beforeAll(async () => {
    // What the driver asks for when it wants its connection dropped: the network goes away, messages are sent to
    // every client meanwhile, and the network comes back.
    server = await startLegacyServer({}, (app) =>
      app.post('/control/drop', async () => {
        const hub = app.signalr.hub('/chathub');
        proxy.block();
        for (let i = 2; i <= 5; i++) await hub.clients.all.send('numbered', i);
        await new Promise((resolve) => setTimeout(resolve, 300));
        proxy.unblock();
        return 'dropped';
      }),
    );
    proxy = await startTcpProxy(Number(new URL(server.url).port));
    // A Core client in group "mixed" answers every group message from the 2.x client.
    core = new HubConnectionBuilder()
      .withUrl(`${server.url}/chathub`, { transport: HttpTransportType.WebSockets })
      .build();
    core.on('groupMessage', (group: string, message: string) => {
      if (group === 'mixed' && !message.startsWith('re: ')) void core.invoke('sendToGroup', 'mixed', `re: ${message}`);
    });
    await core.start();
    await core.invoke('joinGroup', 'mixed');
    const dll = await buildDotnetDriver(DRIVER);
    const output = await runDotnet([dll], DRIVER.dir, { SERVER_URL: proxy.url, CONTROL_URL: server.url }, 240_000);
    lines = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as DriverLine);
  }, 420_000);
  afterAll(async () => {
    await core?.stop();
    await proxy?.close();
    await server?.close();
  });

  function check(transport: string, name: string): DriverLine {
    const line = lines.find((candidate) => candidate.transport === transport && candidate.check === name);
    if (line === undefined)
      throw new Error(
        `the driver printed no ${name} check over ${transport}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`,
      );
    return line;
  }

  test('the driver ran to its end', () => {
    expect(lines.some((line) => line.check === 'done')).toBe(true);
  });

  test('over webSockets, progress reports reach it in order before the answer', () => {
    expect(check('webSockets', 'progress').value).toEqual({ result: 'counted to 3', progress: [1, 2, 3] });
  });

  describe.each(['webSockets', 'serverSentEvents', 'longPolling'])(
    'Microsoft.AspNet.SignalR.Client 2.4.2 over %s',
    (transport) => {
      test('connects over that transport', () => {
        expect(check(transport, 'start')).toEqual({ transport, check: 'start', value: transport });
      });
      test('invocations answer with results, hub errors and hidden errors', () => {
        expect(check(transport, 'add').value).toBe(42);
        expect(check(transport, 'refuse').error).toBe('not today');
        expect(check(transport, 'crash').error).toBe("There was an error invoking Hub method 'ChatHub.Crash'.");
      });
      test('hub state round-trips', () => {
        expect(check(transport, 'state').value).toEqual({ first: 'hello Dotnet', second: 'hello Dotnet', calls: 2 });
      });
      test('a server-to-client call reaches it', () => {
        expect(check(transport, 'send').value).toBe('received');
      });
      test('it shares a group with a Core client', () => {
        expect(check(transport, 'group').value).toEqual({ joinedAs: true, answered: true });
      });
      test('after a dropped connection it receives everything sent meanwhile', () => {
        expect(check(transport, 'reconnect').value).toMatchObject({
          numbers: [1, 2, 3, 4, 5],
          caughtUp: true,
          after: true,
        });
      });
    },
  );
});
