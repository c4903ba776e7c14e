/**
 * Hub URLs in any letter case, as ASP.NET Core's endpoint routing matches them: a client that negotiates at
 * `/ChatHub/negotiate` reaches the hub mapped at `/chathub`, and so do its transport requests. Only the hubs' own
 * URLs are matched this way; every other route of the application keeps Fastify's case-sensitive routing.
 *
 * Fastify's router has one case-sensitivity setting for the whole instance, so this works one step before it: a
 * request (or WebSocket upgrade) whose path equals a hub URL but for letter case gets the hub URL's own spelling as
 * its path — the query string kept — before Fastify routes it. Requests made with `app.inject()` do not pass the
 * HTTP server's events and keep their case.
 */
import type { IncomingMessage, Server } from 'node:http';

/** Rewrites requests for the hub URLs `urls` in another letter case to those URLs, on the HTTP server `server`. */
export class CaseInsensitivePaths {
  /** Each URL by its lower-case spelling. */
  private readonly byLowerCase = new Map<string, string>();
  /** The lengths of the URLs: a path of any other length is no hub URL, and is not even lower-cased. */
  private readonly lengths = new Set<number>();
  private readonly listener = (request: IncomingMessage): void => this.rewrite(request);

  constructor(private readonly server: Server) {}

  /** Adds hub URLs (each spelled as registered, with the route prefix). */
  add(urls: readonly string[]): void {
    for (const url of urls) {
      this.byLowerCase.set(url.toLowerCase(), url);
      this.lengths.add(url.length);
    }
  }

  /** Starts rewriting: first of the server's listeners, so Fastify (and @fastify/websocket) route the new path. */
  start(): void {
    this.server.prependListener('request', this.listener);
    this.server.prependListener('upgrade', this.listener);
  }

  stop(): void {
    this.server.removeListener('request', this.listener);
    this.server.removeListener('upgrade', this.listener);
  }

  private rewrite(request: IncomingMessage): void {
    const url = request.url;
    if (url === undefined) return;
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    if (!this.lengths.has(path.length)) return;
    const spelled = this.byLowerCase.get(path.toLowerCase());
    if (spelled === undefined || spelled === path) return;
    request.url = queryStart === -1 ? spelled : spelled + url.slice(queryStart);
  }
}
