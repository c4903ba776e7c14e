/**
 * What the transport layer reads off the Fastify request that creates or starts a connection, so the hub runtime
 * and raw connection handlers are given plain data and never see a Fastify request: the user id (the
 * `userIdProvider` option), when the authentication expires (the `authenticationExpiration` option) and the
 * snapshot of the request a connection keeps.
 *
 * The two options are application code running on every negotiate and transport request; one that throws is logged
 * and counts as "no user" or "never expires", so it cannot fail the request or the process.
 */
import type { FastifyRequest } from 'fastify';
import type { HubHttpRequest } from '../hub/hub';
import type { Logger } from '../shared/log-events';
import type { AuthenticationExpiration, UserIdProvider } from '../connections/dispatcher-options';

/** The user id of a request from a `userIdProvider` (an empty id is none; a throwing provider, none). */
export function resolveUserId(provider: UserIdProvider, request: FastifyRequest, log: Logger): string | undefined {
  try {
    return provider(request) || undefined;
  } catch (error) {
    log.error({ err: error }, 'userIdProvider failed');
    return undefined;
  }
}

/**
 * When a request's authentication expires, from an `authenticationExpiration` hook: ms since the epoch, `Infinity`
 * for never (no expiry, a value that is not a time, or a hook that throws).
 */
export function authenticationExpiresAt(
  expiration: AuthenticationExpiration,
  request: FastifyRequest,
  log: Logger,
): number {
  try {
    const expires = expiration(request);
    const at = expires instanceof Date ? expires.getTime() : expires;
    return typeof at === 'number' && !Number.isNaN(at) ? at : Infinity;
  } catch (error) {
    log.error({ err: error }, 'authenticationExpiration failed');
    return Infinity;
  }
}

/**
 * The copy of a request that a connection keeps for the application (see {@link HubHttpRequest} for why it is a
 * copy and not the request).
 */
export function snapshotHttpRequest(request: FastifyRequest): HubHttpRequest {
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    query: request.query,
    ip: request.ip,
    user: (request as { user?: unknown }).user,
  };
}
