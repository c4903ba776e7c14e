/**
 * Starts the chat sample: `npm start`, and what the container image runs. Configured by environment variables
 * and/or a JSON file named by `CONFIG_FILE` (every option, its variable and its default: `chatConfigOptions`, and
 * the README's configuration table); a bad value stops it before it listens, with a message naming the option.
 *
 * It serves `/health` and `/ready` (and `/metrics` unless `METRICS_ENABLED=false`), logs JSON lines with stable
 * event names and no secrets, and on SIGTERM/SIGINT drains: new connections are refused, every client gets a Close
 * allowing reconnect once its invocations are done, then Redis is left and the process exits.
 */
import { LogController } from 'fastify';
import {
  ConfigError,
  describeConfig,
  installGracefulShutdown,
  loadConfig,
  logEvent,
  productionLoggerOptions,
  SignalROptionsError,
  signalrOptionsFrom,
} from '../../src/index';
import { buildChatApp, chatConfigOptions } from './app';

/** Addresses only this machine can reach. */
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

async function main(): Promise<void> {
  const config = loadConfig(chatConfigOptions);
  const app = await buildChatApp({
    signalr: signalrOptionsFrom(config),
    hubName: config.hubName,
    metrics: config.metricsEnabled,
    readyRequiresBackplane: config.readyRequiresBackplane,
    ...(config.adminPassword !== undefined && { adminPassword: config.adminPassword }),
    fastify: {
      logger: productionLoggerOptions(config.logLevel),
      trustProxy: config.trustProxy,
      // Off by default: per-request logs would record every long poll; connection events are logged by the hub.
      logController: new LogController({ disableRequestLogging: !config.logRequests }),
    },
  });
  installGracefulShutdown(app, { drainTimeoutMs: config.shutdownDrainTimeoutMs });
  await app.listen({ port: config.port, host: config.host });
  logEvent(
    app.log,
    'info',
    'signalr.server.started',
    { config: describeConfig(chatConfigOptions, config) },
    'chat server started',
  );
  if (!LOOPBACK.has(config.host)) {
    logEvent(
      app.log,
      'warn',
      'signalr.server.demo_exposed',
      { host: config.host },
      'the chat sample is a demo: anyone who reaches it may claim any user id (?user=), question any connection ' +
        '(/ask/:connectionId) and read the Redis host and user (/health); put authentication in front of it',
    );
  }
  if (config.corsOrigins?.length === 1 && config.corsOrigins[0] === '*') {
    logEvent(
      app.log,
      'warn',
      'signalr.server.cors_any_origin',
      {},
      "CORS_ORIGINS='*' lets a page of any site use a visitor's cookies on this server: never pair it with cookie authentication",
    );
  }
}

main().catch((error: unknown) => {
  // A configuration mistake is the operator's to fix: its message alone, no stack trace.
  console.error(error instanceof ConfigError || error instanceof SignalROptionsError ? error.message : error);
  process.exit(1);
});
