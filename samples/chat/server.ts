/**
 * Starts the chat sample: `npm start`. Environment: `PORT` (default 5000) and `HOST` (default 0.0.0.0).
 */
import { buildChatApp } from './app';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 5000);
  const host = process.env.HOST ?? '0.0.0.0';
  // Per-request logs would record every long poll; connection events are logged by the hub instead.
  const app = await buildChatApp({
    fastify: { logger: { level: process.env.LOG_LEVEL ?? 'info' }, disableRequestLogging: true },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down');
      void app.close().then(() => process.exit(0));
    });
  }
  await app.listen({ port, host });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
