/**
 * Options of the ASP.NET SignalR 2.x endpoint (plugin option `aspNetSignalR`): where it listens and the 2.x
 * timings, each defaulting to what a 2.x server uses (docs/protocol.md §7.2).
 */
import { randomBytes } from 'node:crypto';

/** The 2.x endpoint: every registered hub, served to jquery.signalR, signalr-no-jquery and the 2.x .NET client. */
export interface AspNetSignalROptions {
  /**
   * Where the 2.x endpoint listens (`$.connection.hub.url`, `new HubConnection(url)`).
   * @default '/signalr'
   */
  readonly path?: string;
  /**
   * The secret connection and groups tokens are encrypted and signed with. Servers behind one load balancer need
   * the same secret, as 2.x servers need the same machine key.
   * @default random for each process
   */
  readonly tokenSecret?: string | Buffer;
  /**
   * How long a connection without a transport (between polls, or after a dropped socket) is kept, in ms.
   * @default 30000 (2.x `DisconnectTimeout`)
   */
  readonly disconnectTimeoutMs?: number;
  /**
   * How often an idle Server-Sent Events or WebSocket transport gets a keep-alive, in ms; `null` for none. At most a
   * third of `disconnectTimeoutMs`.
   * @default a third of `disconnectTimeoutMs` (10000)
   */
  readonly keepAliveMs?: number | null;
  /**
   * How long a poll is held open without messages before it returns empty, in ms.
   * @default 110000 (2.x `ConnectionTimeout`)
   */
  readonly connectionTimeoutMs?: number;
  /**
   * How long the client waits for a transport to connect before trying the next one, in ms (sent to the client).
   * @default 5000 (2.x `TransportConnectTimeout`)
   */
  readonly transportConnectTimeoutMs?: number;
  /**
   * How long a long-polling client waits between polls, in ms (sent to the client).
   * @default 0 (2.x `LongPollDelay`)
   */
  readonly longPollDelayMs?: number;
  /**
   * Messages kept per connection for a client that reconnects (or polls) after missing them; older ones are dropped.
   * @default 1000 (2.x `DefaultMessageBufferSize`)
   */
  readonly messageBufferSize?: number;
  /**
   * Whether clients are offered WebSockets (`TryWebSockets`).
   * @default true
   */
  readonly webSockets?: boolean;
  /**
   * Largest request body or WebSocket message accepted from a client, in bytes.
   * @default 65536 (2.x `MaxIncomingWebSocketMessageSize`)
   */
  readonly maximumMessageSize?: number;
  /**
   * Bytes that may wait in an event stream's or WebSocket's socket for a client that does not read before its
   * connection is ended as a slow reader; `null` for no bound.
   * @default 1048576
   */
  readonly maximumBufferedOutboundBytes?: number | null;
}

/** {@link AspNetSignalROptions} with every default applied. */
export interface ResolvedAspNetSignalROptions {
  readonly path: string;
  readonly tokenSecret: string | Buffer;
  readonly disconnectTimeoutMs: number;
  readonly keepAliveMs: number | null;
  readonly connectionTimeoutMs: number;
  readonly transportConnectTimeoutMs: number;
  readonly longPollDelayMs: number;
  readonly messageBufferSize: number;
  readonly webSockets: boolean;
  readonly maximumMessageSize: number;
  readonly maximumBufferedOutboundBytes: number | null;
}

/** Thrown for option values the endpoint cannot work with. */
export class AspNetSignalROptionsError extends Error {}

function positive(name: string, value: number | undefined, fallback: number, minimum = 1): number {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved < minimum) {
    throw new AspNetSignalROptionsError(
      `Invalid fastify-signalr options: aspNetSignalR.${name} must be a number of at least ${minimum}.`,
    );
  }
  return resolved;
}

/** Applies the defaults and checks the values (2.x: the keep-alive is at most a third of the disconnect timeout). */
export function resolveAspNetOptions(options: AspNetSignalROptions | true): ResolvedAspNetSignalROptions {
  const given = options === true ? {} : options;
  const path = (given.path ?? '/signalr').replace(/\/+$/, '');
  if (!path.startsWith('/'))
    throw new AspNetSignalROptionsError('Invalid fastify-signalr options: aspNetSignalR.path must start with "/".');
  const disconnectTimeoutMs = positive('disconnectTimeoutMs', given.disconnectTimeoutMs, 30_000, 6_000);
  const keepAliveMs =
    given.keepAliveMs === null
      ? null
      : positive('keepAliveMs', given.keepAliveMs, Math.floor(disconnectTimeoutMs / 3), 2_000);
  if (keepAliveMs !== null && keepAliveMs > disconnectTimeoutMs / 3) {
    throw new AspNetSignalROptionsError(
      'Invalid fastify-signalr options: aspNetSignalR.keepAliveMs must be at most a third of disconnectTimeoutMs.',
    );
  }
  return {
    path,
    tokenSecret: given.tokenSecret ?? randomBytes(32),
    disconnectTimeoutMs,
    keepAliveMs,
    connectionTimeoutMs: positive('connectionTimeoutMs', given.connectionTimeoutMs, 110_000),
    transportConnectTimeoutMs: positive('transportConnectTimeoutMs', given.transportConnectTimeoutMs, 5_000),
    longPollDelayMs: positive('longPollDelayMs', given.longPollDelayMs, 0, 0),
    messageBufferSize: positive('messageBufferSize', given.messageBufferSize, 1000),
    webSockets: given.webSockets ?? true,
    maximumMessageSize: positive('maximumMessageSize', given.maximumMessageSize, 64 * 1024),
    maximumBufferedOutboundBytes:
      given.maximumBufferedOutboundBytes === null
        ? null
        : positive('maximumBufferedOutboundBytes', given.maximumBufferedOutboundBytes, 1024 * 1024),
  };
}
