/**
 * fastify-signalr as the benchmark measures it: the chat sample's hub (`SendMessage` broadcasts `ReceiveMessage`,
 * `Echo` returns its argument — the same contract as the ASP.NET Core reference server) at `/chathub`, both hub
 * protocols, default options, logging off.
 *
 * `--redis <url>` asks for the Redis backplane through the plugin's `redis` option (`--redis-mode streams` for its
 * Redis Streams layout); `--redis-connection-string <endpoints>` gives Redis as a StackExchange.Redis connection
 * string instead (a cluster's seed nodes), and `--redis-sharded` turns on sharded pub/sub (`shardedPubSub`), the URL
 * or connection string then naming Redis Cluster nodes. A build of the plugin without
 * it rejects the option (or keeps the in-memory lifetime manager); the server then exits with
 * {@link BACKPLANE_MISSING_EXIT} so the orchestrator reports the cell as not run rather than measuring two
 * unconnected servers.
 */
import Fastify from 'fastify';
import { fastifySignalR, InMemoryLifetimeManager, SignalROptionsError, type SignalROptions } from '../../src/index';
import { ChatHub } from '../../samples/chat/chat-hub';
import { argument, serverReady } from './ipc';

/** Exit code of a server asked for a backplane this build does not have. */
export const BACKPLANE_MISSING_EXIT = 3;

async function main(): Promise<void> {
  const port = Number(argument('port') ?? 0);
  const redisUrl = argument('redis');
  const redisConnectionString = argument('redis-connection-string');
  const redisSharded = process.argv.includes('--redis-sharded');
  const backplane = redisUrl !== undefined || redisConnectionString !== undefined;
  const redisMode = argument('redis-mode') as 'pubsub' | 'streams' | undefined;
  // `--management-key <key>` turns on the management REST API (the send-from-anywhere benchmark's REST sender).
  const managementKey = argument('management-key');
  // `--admin` registers the admin page (no page is opened): what the page costs a server nobody is watching.
  const admin = process.argv.includes('--admin');
  const app = Fastify({ logger: false });
  // Typed loosely on purpose: a build without an option asked for here must reject it at startup, not fail to compile.
  const redis: Record<string, unknown> = {
    ...(redisUrl !== undefined && { url: redisUrl }),
    ...(redisConnectionString !== undefined && { connectionString: redisConnectionString }),
    ...(redisMode !== undefined && { mode: redisMode }),
    ...(redisSharded && { shardedPubSub: true }),
    // `--redis-autopipelining` turns on ioredis's auto-pipelining (commands of one tick in one write), to price it.
    ...(process.argv.includes('--redis-autopipelining') && { options: { enableAutoPipelining: true } }),
  };
  const options: SignalROptions = {
    hubs: [{ path: '/chathub', hub: ChatHub }],
    // The backplane scenario's one change: the Redis lifetime manager.
    ...(backplane && ({ redis } as Pick<SignalROptions, 'redis'>)),
    ...(managementKey !== undefined && { management: { accessKey: managementKey } }),
    ...(admin && { admin: { authorize: () => false } }),
    // `--aspnet` also serves ASP.NET SignalR 2.x clients at /signalr (the 2.x fan-out benchmark).
    ...(process.argv.includes('--aspnet') && { aspNetSignalR: true as const }),
  };
  const noBackplane = (why = 'the in-memory lifetime manager was kept') => {
    process.stderr.write(
      `this build of fastify-signalr has no Redis backplane as asked (option \`redis\`): ${why.replace(/\s+/g, ' ')}\n`,
    );
    process.exit(BACKPLANE_MISSING_EXIT);
  };
  try {
    await app.register(fastifySignalR, options);
    await app.ready();
  } catch (error) {
    if (backplane && error instanceof SignalROptionsError && /redis/.test(error.message)) noBackplane(error.message);
    throw error;
  }
  if (backplane && app.signalr.endpoints[0].lifetime instanceof InMemoryLifetimeManager) noBackplane();
  await app.listen({ host: '127.0.0.1', port });
  const address = app.server.address();
  serverReady(typeof address === 'object' && address !== null ? address.port : port);
}

void main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
