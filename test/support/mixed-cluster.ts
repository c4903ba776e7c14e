/**
 * Three servers on one suite-started redis-server — two of ours (the chat sample as child processes) and one
 * ASP.NET Core reference server — with an official JSON and MessagePack client on each, for tests of senders that
 * serve no clients themselves (the emitter, the management API). Start it in `beforeAll` and stop it in `afterAll`:
 * the .NET server starts once per test file.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ClientPool, delay, eventually, type TestClient } from './clients';
import { startBackplaneReferenceServer, type BackplaneReferenceServer } from './dotnet-reference';
import { RedisServer } from './redis-server';
import { ServerProcess } from './server-process';

/** The reference hub's full type name: the hub's name on Redis for every server of the cluster. */
export const MIXED_HUB = 'WebAPI.ChatHub';

/** The six clients: a JSON and a MessagePack client on each server. */
export type MixedClientName = 'aJson' | 'aPack' | 'bJson' | 'bPack' | 'dotnetJson' | 'dotnetPack';
export const MIXED_CLIENT_NAMES: readonly MixedClientName[] = [
  'aJson',
  'aPack',
  'bJson',
  'bPack',
  'dotnetJson',
  'dotnetPack',
];

/** User ids: carol has a connection on server B and one on .NET. */
export const MIXED_USERS: Record<MixedClientName, string> = {
  aJson: 'alice',
  aPack: 'bob',
  bJson: 'carol',
  bPack: 'dave',
  dotnetJson: 'erin',
  dotnetPack: 'carol',
};

/** Group members joined at start: `room-a` spans the three servers, `room-b` has one member, on .NET. */
export const MIXED_GROUPS: Record<string, readonly MixedClientName[]> = {
  'room-a': ['aJson', 'bPack', 'dotnetJson'],
  'room-b': ['dotnetPack'],
};

/** Quiet time after which a message that has not arrived is taken as not sent. */
const SETTLE_MS = 300;

export class MixedCluster {
  readonly clients = {} as Record<MixedClientName, TestClient>;
  private readonly pools: ClientPool[] = [];

  private constructor(
    readonly redis: RedisServer,
    readonly ours: readonly [ServerProcess, ServerProcess],
    readonly dotnet: BackplaneReferenceServer,
  ) {}

  /** Starts Redis, the three servers (ours with `env` added) and the six clients; each client answers `GetAnswer`. */
  static async start(env: Record<string, string> = {}): Promise<MixedCluster> {
    const redis = await RedisServer.start();
    const started: { stop(): Promise<void> }[] = [];
    try {
      const ourEnv = { REDIS_URL: redis.url, CHAT_HUB_NAME: MIXED_HUB, ...env };
      const [a, b] = await Promise.all([ServerProcess.start('ours-a', ourEnv), ServerProcess.start('ours-b', ourEnv)]);
      started.push(a, b);
      await Promise.all([a.waitForBackplane('connected'), b.waitForBackplane('connected')]);
      const dotnet = await startBackplaneReferenceServer({ redisPort: redis.port });
      started.push(dotnet);
      const cluster = new MixedCluster(redis, [a, b], dotnet);
      await Promise.all(MIXED_CLIENT_NAMES.map((name) => cluster.connect(name)));
      for (const [room, members] of Object.entries(MIXED_GROUPS)) {
        for (const name of members) await cluster.clients[name].connection.invoke('JoinRoom', room);
      }
      return cluster;
    } catch (error) {
      await Promise.all(started.map((server) => server.stop()));
      await redis.stop();
      throw error;
    }
  }

  /** The hub URL of the server `name` is connected to. */
  hubUrlOf(name: MixedClientName): string {
    if (name.startsWith('dotnet')) return this.dotnet.hubUrl;
    return (name.startsWith('a') ? this.ours[0] : this.ours[1]).hubUrl;
  }

  private async connect(name: MixedClientName): Promise<void> {
    const pool = new ClientPool(() => this.hubUrlOf(name));
    this.pools.push(pool);
    const client = await pool.connect(
      {
        transport: HttpTransportType.WebSockets,
        query: `user=${MIXED_USERS[name]}`,
        ...(name.endsWith('Pack') && { protocol: new MessagePackHubProtocol() }),
        handlers: { GetAnswer: (question: unknown) => `${name} answers ${String(question)}` },
      },
      ['ReceiveMessage'],
    );
    // The message loop starts after onConnected, so an answered invocation means the channels are subscribed.
    await client.connection.invoke('WhoAmI');
    this.clients[name] = client;
  }

  idOf(name: MixedClientName): string {
    return this.clients[name].connection.connectionId!;
  }

  /** Who received `ReceiveMessage` with `text` as its second argument, and how often (zeros left out). */
  receivedCounts(text: string): Partial<Record<MixedClientName, number>> {
    const counts: Partial<Record<MixedClientName, number>> = {};
    for (const name of MIXED_CLIENT_NAMES) {
      const count = this.clients[name].inbox('ReceiveMessage').items.filter((args) => args[1] === text).length;
      if (count > 0) counts[name] = count;
    }
    return counts;
  }

  /** Waits until `text` reached each of `expected` once, then for silence; returns who received it. */
  async deliveredAfterSettling(
    text: string,
    expected: readonly MixedClientName[],
  ): Promise<Partial<Record<MixedClientName, number>>> {
    await eventually(
      () => expected.every((name) => (this.receivedCounts(text)[name] ?? 0) >= 1),
      `${text} to reach ${expected.join(', ')}; got ${JSON.stringify(this.receivedCounts(text))}`,
    ).catch(() => undefined);
    await delay(SETTLE_MS);
    return this.receivedCounts(text);
  }

  async stop(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.stopAll()));
    await Promise.all([...this.ours, this.dotnet].map((server) => server.stop()));
    await this.redis.stop();
  }
}

/** `{ name: 1 }` for each name: what {@link MixedCluster.deliveredAfterSettling} returns when each got it once. */
export function once(names: readonly MixedClientName[]): Partial<Record<MixedClientName, number>> {
  return Object.fromEntries(names.map((name) => [name, 1]));
}
