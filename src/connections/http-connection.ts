/**
 * The transport ↔ connection boundary. An `HttpConnection` is one negotiated (or `skipNegotiation`) connection as
 * ASP.NET Core's `HttpConnectionContext`: id and token, which transport it is bound to, whether a transport request
 * is active, and its outbound queue. Transports feed it bytes and drain its queue; the application above (the hub
 * connection) sees only `receive` and `write`, never which transport it runs on.
 *
 * Outbound writes are coalesced: everything queued during one event-loop turn leaves as one transport write (one
 * WebSocket frame, one SSE event, one poll response), as ASP.NET Core sends each pipe read as one frame. Queued
 * bytes are always whole hub messages, so every frame holds whole messages (spec §1.5).
 */
import type { TransferFormat } from '../../protocol/hub-protocol';
import type { TransportName } from '../../protocol/negotiate';

/** What the application on top of a connection (the hub connection) implements. */
export interface ConnectionApplication {
  /** Bytes from the client, in order; boundaries mean nothing. */
  onReceive(chunk: Buffer): void;
  /** The transport is gone (peer closed, network failure, or the server closed it). Called once. */
  onTransportClosed(error?: Error): void;
}

/** What a transport implements so the connection can hand it outbound bytes. */
export interface TransportSink {
  /** Called when queued bytes are waiting; the transport takes them with `takeOutbound` when it can send. */
  onOutbound(): void;
  /** Ends the transport after the queued bytes are sent. */
  close(): void;
  /** Stops reading from the client until `resumeInput` (inbound back-pressure). */
  pauseInput?(): void;
  resumeInput?(): void;
}

/** Lifecycle of a connection: negotiated but not started, active, or gone. */
export type ConnectionState = 'new' | 'active' | 'closed';

/** Schedules one flush per connection per event-loop turn, for all connections at once. */
class FlushScheduler {
  private queue: HttpConnection[] = [];
  private scheduled = false;
  private readonly run = () => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (let i = 0; i < queue.length; i++) queue[i].flush();
  };

  schedule(connection: HttpConnection): void {
    this.queue.push(connection);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }
}

const flushScheduler = new FlushScheduler();

/** One SignalR connection at the HTTP level. */
export class HttpConnection {
  /** The transport bound by the first transport request, fixed for the life of the connection. */
  transport: TransportName | null = null;
  state: ConnectionState = 'new';
  /** Time (ms since epoch) a transport request last ended; drives the disconnect timeout between requests. */
  lastSeen: number;
  /** Whether a transport request is in progress (a WebSocket or SSE stream open, or a poll pending). */
  transportActive = false;
  /** Format of outbound bytes: Text until the handshake selects a binary protocol. */
  transferFormat: TransferFormat = 'Text';
  /** Called once when the connection is gone, so its table can forget it. */
  onClosed: ((connection: HttpConnection) => void) | null = null;

  private app: ConnectionApplication | null = null;
  /** Bytes POSTed before any transport started the application (.NET queues them in the connection's pipe). */
  private earlyInput: Buffer[] = [];
  private sink: TransportSink | null = null;
  private outbound: Buffer[] = [];
  private outboundLength = 0;
  private flushPending = false;
  private closeRequested = false;

  constructor(
    /** Public id: what the hub and the client see as `connectionId`. */
    readonly connectionId: string,
    /** Secret token that selects the connection in `?id=` (equal to the id for negotiate v0). */
    readonly connectionToken: string,
    /** The negotiate version the connection was created with (0 without negotiate). */
    readonly negotiateVersion: number,
    now: number,
  ) {
    this.lastSeen = now;
  }

  /** Bytes queued and not yet taken by the transport. */
  get bufferedOutbound(): number {
    return this.outboundLength;
  }

  /** Whether the server asked to close this connection. */
  get closing(): boolean {
    return this.closeRequested;
  }

  /** Binds the transport's sink for the life of the connection; queued bytes (if any) are offered to it. */
  attachSink(sink: TransportSink): void {
    this.sink = sink;
    this.state = 'active';
    if (this.outboundLength > 0) sink.onOutbound();
  }

  /** A transport request started (a socket opened, a poll arrived). */
  markActive(): void {
    this.transportActive = true;
  }

  /** A transport request ended; the disconnect timeout counts from now until the next one. */
  markInactive(now: number): void {
    this.transportActive = false;
    this.lastSeen = now;
  }

  /** Queues whole hub messages for the client. */
  write(data: Buffer): void {
    if (this.state === 'closed' || this.closeRequested) return;
    this.outbound.push(data);
    this.outboundLength += data.length;
    if (!this.flushPending) {
      this.flushPending = true;
      flushScheduler.schedule(this);
    }
  }

  /** Offers queued bytes to the transport now (the scheduler calls it once per turn). */
  flush(): void {
    this.flushPending = false;
    if (this.outboundLength > 0) this.sink?.onOutbound();
  }

  /** Takes every queued byte as one buffer, or `null` when nothing is queued. */
  takeOutbound(): Buffer | null {
    const length = this.outboundLength;
    if (length === 0) return null;
    const parts = this.outbound;
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts, length);
    this.outbound = [];
    this.outboundLength = 0;
    return data;
  }

  /**
   * Takes every queued message as the list of buffers queued (whole messages, in order), or `null` when nothing is
   * queued. A broadcast queues the same buffers to every recipient, so a transport can frame such a list once for
   * all of them instead of joining and framing it per connection.
   */
  takeOutboundParts(): Buffer[] | null {
    if (this.outboundLength === 0) return null;
    const parts = this.outbound;
    this.outbound = [];
    this.outboundLength = 0;
    return parts;
  }

  /** The hub connection on top, once a transport started it. */
  get application(): ConnectionApplication | null {
    return this.app;
  }

  /** Binds the application; input that arrived before it is delivered now. */
  set application(application: ConnectionApplication | null) {
    this.app = application;
    if (application === null || this.earlyInput.length === 0) return;
    const early = this.earlyInput;
    this.earlyInput = [];
    for (const chunk of early) application.onReceive(chunk);
  }

  /** Passes client bytes to the application. */
  receive(chunk: Buffer): void {
    if (this.app !== null) this.app.onReceive(chunk);
    else if (this.state !== 'closed') this.earlyInput.push(chunk);
  }

  pauseInput(): void {
    this.sink?.pauseInput?.();
  }

  resumeInput(): void {
    this.sink?.resumeInput?.();
  }

  /**
   * Ends the connection from the server side: the transport sends what is queued, then ends (a long-polling
   * connection hands its last bytes to the next poll). Without a transport the connection ends at once.
   */
  close(): void {
    if (this.closeRequested || this.state === 'closed') return;
    this.closeRequested = true;
    if (this.sink !== null) this.sink.close();
    else this.transportClosed();
  }

  /** Marks the connection gone, tells the application and the table once. */
  transportClosed(error?: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.transportActive = false;
    this.sink = null;
    this.outbound = [];
    this.outboundLength = 0;
    this.earlyInput = [];
    const application = this.app;
    this.app = null;
    application?.onTransportClosed(error);
    this.onClosed?.(this);
  }
}
