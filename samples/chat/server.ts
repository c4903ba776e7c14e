/**
 * Starts the chat sample: `npm start`. Environment: `PORT` (default 5000), `HOST` (default 0.0.0.0),
 * `CORS_ORIGINS` (comma-separated origins of pages on other origins, or `*`; unset: same-origin only),
 * `LOG_LEVEL` (default info). With `REDIS_URL` the hub uses the Redis backplane (`REDIS_CHANNEL_PREFIX`,
 * `REDIS_ACK_TIMEOUT_MS`, and `CHAT_HUB_NAME` for its name there; see `backplaneFromEnvironment`).
 */
import { LogController } from 'fastify';
import { backplaneFromEnvironment, buildChatApp } from './app';

/** How long shutdown waits for connections to finish before cutting them. */
const SHUTDOWN_DRAIN_MS = 5000;

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 5000);
  const host = process.env.HOST ?? '0.0.0.0';
  const { redis, hubName } = backplaneFromEnvironment();
  // Per-request logs would record every long poll; connection events are logged by the hub instead.
  const app = await buildChatApp({
    ...(redis !== undefined && { signalr: { redis } }),
    hubName,
    fastify: {
      logger: { level: process.env.LOG_LEVEL ?? 'info' },
      logController: new LogController({ disableRequestLogging: true }),
    },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down');
      // Every client is sent a Close at once; sockets still open after the drain time (idle keep-alives, a client
      // that never answers) are cut so shutdown stays bounded.
      setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_DRAIN_MS).unref();
      void app.close().then(() => process.exit(0));
    });
  }
  await app.listen({ port, host });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
