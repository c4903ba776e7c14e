/**
 * Raw connections: ASP.NET Core's `MapConnectionHandler<T>` — negotiate and every transport at a path of its own,
 * but no hub protocol on top: the application reads the bytes a client sends and writes bytes back, as the official
 * clients' low-level connection (`HttpConnection` of Microsoft.AspNetCore.Http.Connections.Client, the JavaScript
 * client's `HttpConnection`) exchanges them. The negotiate, transport, user and authentication rules are those of
 * hubs — the same routes serve both (`hub-routes.ts`) — so a raw endpoint answers requests exactly as a hub does.
 */
import type { onRequestHookHandler } from 'fastify';
import type { TransportName } from '../../protocol/negotiate';
import { ConnectionManager } from '../connections/connection-manager';
import type { ConnectionApplication, HttpConnection } from '../connections/http-connection';
import type { Heartbeat } from '../shared/heartbeat';
import type { HubHttpRequest } from '../hub/hub';
import type { Logger } from '../shared/log-events';
import type { RawConnectionOptions, RequestAuthorizer, ResolvedRouteOptions } from '../connections/dispatcher-options';

/**
 * A raw connection endpoint: the `connectionHandlers` option of the plugin (ASP.NET Core's
 * `app.MapConnectionHandler<T>(path)`). Each of its HTTP options ({@link RawConnectionOptions}) falls back to the
 * plugin-wide value, then to its default.
 */
export interface ConnectionHandlerRegistration extends Partial<RawConnectionOptions> {
  /** The URL path, e.g. `/raw`; negotiate is at `{path}/negotiate`. Matched in any letter case, as hubs are. */
  readonly path: string;
  /**
   * Runs once per connection when its transport starts (.NET's `ConnectionHandler.OnConnectedAsync`). The
   * connection lasts as long as the returned promise: when it settles the server closes the connection (after the
   * bytes sent so far); a rejection is logged. Read what the client sends with `for await (const chunk of
   * connection)`, which ends when the client closes.
   */
  readonly onConnected: (connection: ConnectionContext) => void | Promise<void>;
  /** Fastify `onRequest` hooks for this path's requests only (authentication), as a hub's `onRequest`. */
  readonly onRequest?: onRequestHookHandler | readonly onRequestHookHandler[];
  /** Admits a request after the hooks: `false` answers 401 without a user, 403 with one, as a hub's `authorize`. */
  readonly authorize?: RequestAuthorizer;
}

/** A raw endpoint's settings after defaults; the shape the transport routes read. */
export interface ResolvedConnectionHandler extends RawConnectionOptions, ResolvedRouteOptions {
  readonly path: string;
  readonly onConnected: (connection: ConnectionContext) => void | Promise<void>;
  /** Stateful reconnect sequences hub messages; a raw connection has none, so it is never granted. */
  readonly allowStatefulReconnects: false;
}

/** Unread received bytes above which the server stops reading from the client until the application catches up. */
const INBOUND_PAUSE_BYTES = 64 * 1024;

/**
 * One raw connection, as the application sees it (.NET's `ConnectionContext`): what the client sent, as an async
 * iterable of byte chunks (boundaries mean nothing; one reader at a time), and `send` for bytes to the client.
 */
export interface ConnectionContext extends AsyncIterable<Buffer> {
  /** The connection's public id (the negotiate answer's `connectionId`). */
  readonly connectionId: string;
  /** The transport the client chose. */
  readonly transport: TransportName;
  /** The user resolved at negotiate, if any. */
  readonly userIdentifier: string | undefined;
  /** A copy of the request that started the transport (headers, query, address, user). */
  readonly request: HubHttpRequest;
  /** Resolves when the connection ends: with the transport's error, or `undefined` for a clean end. */
  readonly closed: Promise<Error | undefined>;
  /**
   * How WebSocket frames to the client are typed: `Text` (the default, as in .NET) or `Binary` — set it to what the
   * client's `TransferFormat` is. Server-Sent Events carry text only: setting `Binary` on them throws.
   */
  transferFormat: 'Text' | 'Binary';
  /** Aborted when the connection ends, for work that should stop with it. */
  readonly signal: AbortSignal;
  /**
   * Queues bytes (a string as UTF-8) for the client; everything sent in one event-loop turn leaves as one frame,
   * event or poll answer. Nothing is sent once the connection ended. A client more than
   * `maximumBufferedOutboundBytes` behind is closed.
   */
  send(data: string | Uint8Array): void;
  /** Ends the connection from the server: what was sent is delivered first. */
  close(): void;
}

/** The {@link ConnectionContext} of one connection, and the application the transports feed. */
class RawConnection implements ConnectionContext, ConnectionApplication {
  /** The connection's public id (the negotiate answer's `connectionId`). */
  readonly connectionId: string;
  /** The transport the client chose. */
  readonly transport: TransportName;
  /** The user resolved at negotiate, if any. */
  readonly userIdentifier: string | undefined;
  /** A copy of the request that started the transport (headers, query, address, user). */
  readonly request: HubHttpRequest;
  /** Resolves when the connection ends: with the transport's error, or `undefined` for a clean end. */
  readonly closed: Promise<Error | undefined>;

  private readonly inbound: Buffer[] = [];
  private inboundBytes = 0;
  private reader: (() => void) | null = null;
  private ended = false;
  private abortController: AbortController | undefined;
  private resolveClosed!: (error: Error | undefined) => void;

  constructor(
    private readonly http: HttpConnection,
    request: HubHttpRequest,
    private readonly maximumBufferedOutboundBytes: number | null,
  ) {
    this.connectionId = http.connectionId;
    this.transport = http.transport ?? 'WebSockets';
    this.userIdentifier = http.userIdentifier;
    this.request = request;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /**
   * How WebSocket frames to the client are typed: `Text` (the default, as in .NET) or `Binary` — set it to what the
   * client's `TransferFormat` is. Server-Sent Events carry text only.
   */
  get transferFormat(): 'Text' | 'Binary' {
    return this.http.transferFormat;
  }

  set transferFormat(format: 'Text' | 'Binary') {
    if (format === 'Binary' && this.transport === 'ServerSentEvents') {
      throw new Error('Server-Sent Events carry text only: the Binary transfer format cannot be used on them.');
    }
    this.http.transferFormat = format;
  }

  /** Aborted when the connection ends, for work that should stop with it. */
  get signal(): AbortSignal {
    if (this.abortController === undefined) {
      this.abortController = new AbortController();
      if (this.ended) this.abortController.abort();
    }
    return this.abortController.signal;
  }

  /**
   * Queues bytes (a string as UTF-8) for the client; everything sent in one event-loop turn leaves as one frame,
   * event or poll answer. Nothing is sent once the connection ended. A client more than
   * `maximumBufferedOutboundBytes` behind is closed.
   */
  send(data: string | Uint8Array): void {
    if (this.ended) return;
    const bytes =
      typeof data === 'string'
        ? Buffer.from(data, 'utf8')
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length === 0) return;
    const limit = this.maximumBufferedOutboundBytes;
    if (limit !== null && this.http.pendingOutbound + this.http.bufferedOutbound + bytes.length > limit) {
      this.http.close();
      return;
    }
    this.http.write(bytes);
  }

  /** Ends the connection from the server: what was sent is delivered first. */
  close(): void {
    this.http.close();
  }

  /** What the client sends, chunk by chunk, until it closes the connection (or the server does). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.inbound.shift();
      if (chunk !== undefined) {
        this.inboundBytes -= chunk.length;
        if (this.inboundBytes < INBOUND_PAUSE_BYTES && this.http.inputPaused) this.http.resumeInput();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.reader = resolve));
    }
  }

  /** Bytes from the transport. */
  onReceive(chunk: Buffer): void {
    if (this.ended) return;
    this.inbound.push(chunk);
    this.inboundBytes += chunk.length;
    // Back-pressure: an application that reads slower than its client sends holds at most about this much.
    if (this.inboundBytes >= INBOUND_PAUSE_BYTES) this.http.pauseInput();
    this.wake();
  }

  /** The transport ended. */
  onTransportClosed(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.abortController?.abort();
    this.wake();
    this.resolveClosed(error);
  }

  private wake(): void {
    const reader = this.reader;
    this.reader = null;
    reader?.();
  }
}

/** The runtime of one raw endpoint: its connection table and the connections alive on this server. */
export class ConnectionHandlerEndpoint {
  readonly connections: ConnectionManager;
  private readonly live = new Set<ConnectionContext>();

  constructor(
    readonly options: ResolvedConnectionHandler,
    heartbeat: Heartbeat,
    readonly log: Logger,
  ) {
    this.connections = new ConnectionManager(options.disconnectTimeoutMs);
    heartbeat.add(this.connections);
  }

  /**
   * Starts the application on a connection whose transport just started, given the copy of the request it keeps
   * (raw connections do not close when the authentication expires).
   */
  startConnection(http: HttpConnection, request: HubHttpRequest): ConnectionContext {
    const connection = new RawConnection(http, request, this.options.maximumBufferedOutboundBytes);
    http.application = connection;
    this.live.add(connection);
    void connection.closed.then(() => this.live.delete(connection));
    void (async () => {
      try {
        await this.options.onConnected(connection);
      } catch (error) {
        this.log.error({ err: error, connectionId: connection.connectionId }, 'connection handler failed');
      } finally {
        // As in .NET, the connection ends with its handler.
        http.close();
      }
    })();
    return connection;
  }

  /** Closes every connection (server shutdown): queued bytes are sent first. */
  shutdown(): void {
    for (const connection of this.connections.all()) connection.close();
  }
}
