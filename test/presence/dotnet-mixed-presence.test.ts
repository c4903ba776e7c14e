/**
 * Presence in a fleet shared with an ASP.NET Core server (the reference server, Microsoft.AspNetCore.SignalR.
 * StackExchangeRedis) on one real Redis: our two servers with presence warn once that a server which does not
 * register shares the hub, list only the connections of registered servers, and the .NET server's routing is not
 * disturbed by our keys and channels (a group send from .NET still reaches the group's members on every server).
 */
import { describeWithDotnet } from '../support/dotnet-reference';
import { MixedCluster } from '../support/mixed-cluster';

const WARNING = /servers that do not register presence share this hub/;

describeWithDotnet('presence with an ASP.NET Core server on the same Redis', () => {
  let cluster: MixedCluster;

  beforeAll(async () => {
    cluster = await MixedCluster.start({
      SIGNALR_PRESENCE: 'true',
      SIGNALR_PRESENCE_HEARTBEAT_MS: '200',
      LOG_LEVEL: 'info',
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  test('our servers warn once of the unregistered .NET server and list only registered connections', async () => {
    for (const server of cluster.ours) {
      const deadline = Date.now() + 15_000;
      while (!server.logLines().some((line) => WARNING.test(line.msg)) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const warnings = server.logLines().filter((line) => WARNING.test(line.msg));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ subscribers: 3, registeredServers: 2 });
    }
    const [a, b] = cluster.ours;
    for (const server of [a, b]) {
      const page = (await (await fetch(`${server.url}/presence/groups/room-a`)).json()) as {
        scope: string;
        connections: { connectionId: string }[];
      };
      expect(page.scope).toBe('fleet');
      expect(page.connections.map((member) => member.connectionId).sort()).toEqual(
        [cluster.idOf('aJson'), cluster.idOf('bPack')].sort(),
      );
      const carol = (await (await fetch(`${server.url}/presence/users/carol`)).json()) as {
        connections: { connectionId: string }[];
      };
      expect(carol.connections.map((connection) => connection.connectionId)).toEqual([cluster.idOf('bJson')]);
    }
  });

  test('a group send from the .NET server still reaches the members on every server', async () => {
    await cluster.clients.dotnetJson.connection.invoke('SendToRoom', 'room-a', 'erin', 'from-dotnet');
    expect(await cluster.deliveredAfterSettling('from-dotnet', ['aJson', 'bPack', 'dotnetJson'])).toEqual({
      aJson: 1,
      bPack: 1,
      dotnetJson: 1,
    });
  });
});
