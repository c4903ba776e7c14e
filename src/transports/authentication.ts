/**
 * Authentication support for the hub routes. Authentication itself is the application's: ordinary Fastify hooks
 * (for example `@fastify/jwt`'s `request.jwtVerify()`) on the hub's routes. Two things SignalR clients need on top:
 *
 * - Browsers cannot set headers on WebSockets and Server-Sent Events, so the official client sends its access token
 *   as the `access_token` query parameter there (docs/protocol.md §1.5, §1.6). It is turned into an `Authorization:
 *   Bearer` header before the application's hooks run, so they read one place — as ASP.NET Core apps do in
 *   `JwtBearerEvents.OnMessageReceived`.
 * - Hub-wide authorization after authentication: 401 without a user, 403 with one that is not allowed, as
 *   ASP.NET Core's `[Authorize]` answers negotiate and the transport requests.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { queryValue } from './query';

/**
 * Copies the token from the query into the `Authorization` header when the request has none. A callback hook, not
 * an async one: it runs on every negotiate and transport request, and a promise per hook is measurable there.
 */
export function accessTokenHook(parameter: string) {
  return (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (request.headers.authorization === undefined) {
      const token = queryValue(request.query, parameter);
      if (token) request.headers.authorization = `Bearer ${token}`;
    }
    done();
  };
}

/** Refuses requests the hub's `authorize` predicate rejects. */
export function authorizeHook(authorize: (request: FastifyRequest) => boolean | Promise<boolean>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    let allowed = false;
    try {
      allowed = await authorize(request);
    } catch (error) {
      request.log.error({ err: error }, 'hub authorization failed');
    }
    if (allowed) return undefined;
    const authenticated = (request as { user?: unknown }).user != null;
    return reply
      .code(authenticated ? 403 : 401)
      .header('content-type', 'text/plain')
      .send('');
  };
}
