/**
 * Cross-origin access for browser pages served from another origin (docs/protocol.md §1.10). The official browser
 * client sends credentialed `fetch` requests with the non-simple headers `X-Requested-With` and `X-SignalR-User-Agent`
 * (and `Authorization` with a token), so an allowed origin gets a preflight answer echoing the requested method and
 * headers, `Access-Control-Allow-Credentials: true`, and its own origin echoed back (never `*`), as ASP.NET Core's
 * `SetIsOriginAllowed(...).AllowCredentials()` policy answers.
 *
 * Browsers do not apply CORS to WebSockets, so an upgrade whose `Origin` is neither the server's own nor allowed is
 * refused with 403 here (cross-site WebSocket hijacking).
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/** Decides whether a page of that origin may connect from another origin. */
export type OriginPolicy = (origin: string) => boolean;

/** Builds the policy from the option: a list of origins, `'*'` for any, or a predicate; absent: none. */
export function originPolicy(allowed: readonly string[] | '*' | OriginPolicy | undefined): OriginPolicy {
  if (allowed === undefined) return () => false;
  if (allowed === '*') return () => true;
  if (typeof allowed === 'function') return allowed;
  // Configured origins are normalised to lower case, as ASP.NET Core's `WithOrigins` does; the `Origin` header is
  // compared as sent (browsers serialise origins in lower case), so `HTTP://APP.EXAMPLE` is not `http://app.example`.
  const origins = new Set(allowed.map((origin) => origin.replace(/\/+$/, '').toLowerCase()));
  return (origin) => origins.has(origin);
}

/** Whether `origin` names the host the request was sent to. */
function isSameOrigin(origin: string, request: FastifyRequest): boolean {
  try {
    return new URL(origin).host.toLowerCase() === (request.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}

/**
 * An `onRequest` hook for the hub routes. When it answers the request itself (a preflight, or a refused WebSocket) it
 * does not call `done`, so Fastify stops there. A callback hook, not an async one: it runs on every negotiate and
 * transport request, and a promise per hook is measurable there.
 */
export function corsHook(policy: OriginPolicy) {
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const origin = request.headers.origin;
    if (origin === undefined) return done();
    const allowed = policy(origin);
    if (allowed) {
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-allow-credentials', 'true');
      reply.header('vary', 'Origin');
    }
    const requestedMethod = request.headers['access-control-request-method'];
    if (request.method === 'OPTIONS' && requestedMethod !== undefined) {
      // A refused origin still gets 204, only without the headers that would let the browser go on.
      if (allowed) {
        reply.header('access-control-allow-methods', requestedMethod);
        const requestedHeaders = request.headers['access-control-request-headers'];
        if (requestedHeaders !== undefined) reply.header('access-control-allow-headers', requestedHeaders);
      }
      void reply.code(204).send();
      return;
    }
    if (request.ws && !allowed && !isSameOrigin(origin, request)) {
      void reply.code(403).header('content-type', 'text/plain').send('Origin not allowed');
      return;
    }
    done();
  };
}
