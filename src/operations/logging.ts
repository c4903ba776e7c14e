/**
 * Fastify logger settings for production: JSON lines (pino), and no secret in them. SignalR puts two secrets in
 * URLs — the `access_token` query parameter (browsers cannot set headers on WebSockets and Server-Sent Events) and
 * the connection token `id` (whoever has it can drive the connection) — so logged request URLs carry neither;
 * authorization and cookie headers are redacted wherever a request's headers are logged.
 *
 * Stable event names (the `event` field) let operators filter without parsing messages:
 * `signalr.connection.started`, `signalr.connection.ended`, `signalr.handshake.failed`,
 * `signalr.invocation.failed`, `signalr.connection.slow_client`, `signalr.connection.error`,
 * `signalr.backplane.connected`, `signalr.backplane.disconnected`, `signalr.backplane.reconnected`,
 * `signalr.backplane.subscribe_failed`, `signalr.backplane.warning`, `signalr.backplane.error`,
 * `signalr.server.started`, `signalr.shutdown.started`, `signalr.shutdown.drained`, `signalr.shutdown.completed`,
 * `signalr.shutdown.failed`, `signalr.shutdown.forced`.
 */
import type { FastifyRequest, FastifyServerOptions } from 'fastify';

/** Query parameters whose values never reach a log line. */
const SECRET_QUERY_PARAMETERS = /([?&](?:access_token|id)=)[^&#]*/gi;

/** A request URL with its secret query values replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMETERS, '$1[redacted]');
}

/** Header paths pino removes from anything logged. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

/**
 * Logger options for `Fastify({ logger })`: the level, request URLs without secrets, secret headers redacted.
 * Pair it with `disableRequestLogging` (or a `LogController`) on busy servers: long polling makes a request every
 * 90 s per client even when nothing happens.
 */
export function productionLoggerOptions(level: string): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  };
}
