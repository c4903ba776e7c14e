/**
 * The logging vocabulary every layer shares, with no dependency of its own: the {@link Logger} shape the server's
 * layers write to (any pino logger, Fastify's included, is one), so the hub runtime and the Redis backplane log
 * without knowing Fastify.
 */

/** The levels the server logs at. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Where the server's layers write their lines: one structured object and a message per line, as pino takes them.
 * Fastify's `app.log` (and its children) is one.
 */
export interface Logger {
  error(object: object, message: string): void;
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
  debug(object: object, message: string): void;
}
