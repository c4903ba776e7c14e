/**
 * What the backplane says when Redis fails: which errors no retry can cure, the texts that tell an operator what to
 * change, and how an error is made safe to log. Errors are described by message and code only, never whole:
 * ioredis attaches the failed command and its arguments (AUTH's password among them) to reply errors.
 */
import type { SignalRErrorCode } from '../shared/errors';

/**
 * Why startup failed: Redis refused the credentials, the TLS handshake failed, the user may not use the
 * backplane's channels, or (with `abortConnect`) Redis could not be reached in time. The message says which, where,
 * and what to change; it never contains a password.
 */
export class RedisBackplaneStartupError extends Error {
  override readonly name = 'RedisBackplaneStartupError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_REDIS_STARTUP';
}

/**
 * `redis.shardedPubSub` was asked of a Redis that is not a Redis Cluster (a single server, Sentinel, a Unix socket),
 * or together with streams mode: sharded channels exist only on a cluster.
 */
export class RedisShardedPubSubError extends Error {
  override readonly name = 'RedisShardedPubSubError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER';
}

/** What an operator reads when `shardedPubSub` meets a Redis that is not a cluster (`where` says which). */
export function shardedNeedsClusterExplanation(where: string): string {
  return (
    `Redis backplane: redis.shardedPubSub (SIGNALR_REDIS_SHARDED) needs a Redis Cluster, and ${where} is not one. ` +
    'Sharded pub/sub spreads channels over the shards of a cluster; with one Redis server turn the option off.'
  );
}

/** Errors that retrying cannot cure: the configuration (credentials, certificates, ACL) must change. */
export type FatalKind = 'auth' | 'tls' | 'permission';

/** The kind of `error` when no retry can cure it; undefined when Redis may simply not be there (yet). */
export function fatalKind(error: Error): FatalKind | undefined {
  const message = error.message ?? '';
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (/^(WRONGPASS|NOAUTH)\b/.test(message) || /invalid (username-)?password/i.test(message)) return 'auth';
  if (/^NOPERM\b/.test(message)) return 'permission';
  if (
    /^(ERR_TLS_|ERR_SSL_)/.test(code) ||
    /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|LEAF_SIGNATURE/.test(code) ||
    /certificate|ssl3?_|wrong version number/i.test(message)
  ) {
    return 'tls';
  }
  return undefined;
}

/** `text` with every secret replaced by `*****`. */
export function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (secret.length > 0) result = result.split(secret).join('*****');
  return result;
}

/**
 * The text of an error, safe to log or show: message and code only (ioredis attaches the failed command with its
 * arguments — AUTH's password among them — to reply errors, so errors are never logged whole), secrets blanked.
 */
export function describeRedisError(error: Error, secrets: readonly string[]): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  return redact(message, secrets);
}

/**
 * What an operator must change after a configuration error: `text` is the described error, `where` the endpoint
 * (or the target's description), `username` the Redis user connections authenticate as.
 */
export function explainFatal(kind: FatalKind, text: string, where: string, username: string | undefined): string {
  const user = `user '${username ?? 'default'}'`;
  switch (kind) {
    case 'auth':
      return (
        `Redis backplane: Redis at ${where} refused the credentials of ${user} (${text}). ` +
        'Check the user name and password given to the redis option (the password is not shown).'
      );
    case 'tls':
      return (
        `Redis backplane: the TLS connection to ${where} failed (${text}). The server's certificate must be signed ` +
        "by a CA in redis.tls.ca (or the system's CAs) and name the host (or sslHost / tls.servername); " +
        'TLS must be on (rediss:// or ssl=true) exactly when the server speaks TLS.'
      );
    case 'permission':
      return (
        `Redis backplane: ${user} lacks a permission the backplane needs at ${where} (${text}). ` +
        'Grant the ACL described in the README ("Redis in production").'
      );
  }
}

/** Why startup failed with `abortConnect`: Redis was not reached within the connect timeout. */
export function connectTimeoutExplanation(
  description: string,
  connectTimeoutMs: number,
  lastError: string | undefined,
): string {
  return (
    `Redis backplane: could not connect to ${description} within ${connectTimeoutMs} ms` +
    `${lastError !== undefined ? ` (last error: ${lastError})` : ''}. The server does not start ` +
    'because abortConnect is true; set abortConnect=false to start without Redis and connect when it is there.'
  );
}

/** Logged once when the Redis user may not run `CLUSTER SLOTS`: what the backplane then cannot know. */
export const CLUSTER_SLOTS_FORBIDDEN =
  'Redis backplane: the Redis user may not run CLUSTER SLOTS, so whether Redis is a cluster is unknown: ' +
  'reconnections use the configured endpoints only, and a client result for a connection no server owns ' +
  'waits for its cancellation instead of failing at once (grant +cluster|slots)';

/** The reason of a command whose connection closed before Redis answered. */
export const CONNECTION_LOST = 'the Redis connection closed before the reply';

/** ioredis's errors for a command whose connection closed (or could not take it): the command may go again. */
export function isConnectionLoss(error: Error): boolean {
  return /Connection is closed|Stream isn't writeable|ECONNRESET|EPIPE|ECONNREFUSED/.test(error.message ?? '');
}
