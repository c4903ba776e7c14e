/**
 * The transport ↔ connection boundary. An `HttpConnection` is one negotiated (or `skipNegotiation`) connection as
 * ASP.NET Core's `HttpConnectionContext`: id and token, which transport it is bound to, whether a transport request
 * is active, and its outbound queue. Transports feed it bytes and drain its queue; the application above (the hub
 * connection) sees only `receive` and `write`, never which transport it runs on.
 *
 * Outbound writes are coalesced: everything queued during one event-loop turn leaves as one transport write (one
 * WebSocket frame, one SSE event, one poll response), as ASP.NET Core sends each pipe read as one frame. Queued
 * bytes are always whole hub messages, so every frame holds whole messages (docs/protocol.md §1.5).
 */
import type { TransferFormat } from '../../protocol/hub-protocol';
import type { TransportName } from '../../protocol/negotiate';

/** What the application on top of a connection (the hub connection) implements. */
export interface ConnectionApplication {
  /** Bytes from the client, in order; boundaries mean nothing. */
  onReceive(chunk: Buffer): void;
  /** The connection is over (peer closed, network failure, timeout, or the server closed it). Called once. */
  onTransportClosed(error?: Error): void;
  /**
   * The transport went away but the connection may resume (stateful reconnect, docs/protocol.md §2.10); it ends with
   * `onTransportClosed` if no new transport comes within the disconnect timeout.
   */
  onTransportLost?(): void;
  /** A new transport took over after `onTransportLost`; nothing received before it is to be continued. */
  onTransportResumed?(): void;
}

/** What a transport implements so the connection can hand it outbound bytes. */
export interface TransportSink {
  /** Called when queued bytes are waiting; the transport takes them with `takeOutbound` when it can send. */
  onOutbound(): void;
  /** Ends the transport after the queued bytes are sent. */
  close(): void;
  /** Bytes handed to the transport and not yet sent to the network (a socket's write buffer). */
  readonly bufferedAmount?: number;
  /** Stops reading from the client until `resumeInput` (inbound back-pressure). */
  pauseInput?(): void;
  resumeInput?(): void;
  /** Drops the transport at once, without a goodbye (it was replaced by a reconnecting one). */
  abandon?(): void;
  /** Called on every heartbeat: a transport aborts a response that makes no progress. */
  checkProgress?(now: number): void;
  /** The connection is over: the transport lets go of the sockets it kept. */
  connectionClosed?(): void;
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
  /** The user id resolved when the connection was negotiated; every later request must resolve to the same. */
  userIdentifier: string | undefined = undefined;
  /** Whether negotiate granted stateful reconnect (docs/protocol.md §2.10). */
  statefulReconnectNegotiated = false;
  /**
   * Whether a lost transport waits for a reconnecting one instead of ending the connection: set by the hub once the
   * handshake confirmed stateful reconnect (protocol version 2).
   */
  reconnectable = false;
  /** Set when the disconnect timeout ended the connection (reported as a timeout in metrics). */
  expired = false;

  private app: ConnectionApplication | null = null;
  /** Bytes POSTed before any transport started the application (.NET queues them in the connection's pipe). */
  private earlyInput: Buffer[] = [];
  private earlyInputLength = 0;
  /** Whether a POST holds the connection's send lock; the POSTs waiting for it, in order. */
  private sendLocked = false;
  private readonly sendWaiters: Array<() => void> = [];
  private sink: TransportSink | null = null;
  private outbound: Buffer[] = [];
  private outboundLength = 0;
  private flushPending = false;
  private closeRequested = false;
  /** Input paused on a transport that cannot pause its socket (POSTs): sends are answered once it resumes. */
  private inputPausedWaiters: Array<() => void> | null = null;

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

  /** Bytes on their way to the client: queued here plus held in the transport's write buffer. */
  get pendingOutbound(): number {
    return this.outboundLength + (this.sink?.bufferedAmount ?? 0);
  }

  /** Whether a transport currently carries the connection. */
  get hasTransport(): boolean {
    return this.sink !== null;
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
    this.earlyInputLength = 0;
    for (const chunk of early) application.onReceive(chunk);
  }

  /** Bytes POSTed and held until a transport starts the application. */
  get earlyInputBytes(): number {
    return this.earlyInputLength;
  }

  /** Passes client bytes to the application. */
  receive(chunk: Buffer): void {
    if (this.app !== null) this.app.onReceive(chunk);
    else if (this.state !== 'closed') {
      this.earlyInput.push(chunk);
      this.earlyInputLength += chunk.length;
    }
  }

  /**
   * Waits for the connection's send lock and resolves with its release (safe to call more than once). One POST at a
   * time reads its body into the connection; later ones wait unread — their bytes stay in the network — as ASP.NET
   * Core's per-connection write lock makes them wait
   * (`ProcessSend` in src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0).
   */
  lockSends(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.sendLocked = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.sendLocked = false;
          this.sendWaiters.shift()?.();
        });
      };
      if (this.sendLocked) this.sendWaiters.push(grant);
      else grant();
    });
  }

  /**
   * Stops reading from the client. A socket transport pauses its socket; for POSTed input the connection answers
   * sends only once input resumes (the official clients send one POST at a time, so they wait).
   */
  pauseInput(): void {
    if (this.sink?.pauseInput !== undefined) this.sink.pauseInput();
    else this.inputPausedWaiters ??= [];
  }

  resumeInput(): void {
    this.sink?.resumeInput?.();
    const waiters = this.inputPausedWaiters;
    this.inputPausedWaiters = null;
    if (waiters !== null) for (const resume of waiters) resume();
  }

  /** Whether POSTed input waits for the application to resume input. */
  get inputPaused(): boolean {
    return this.inputPausedWaiters !== null;
  }

  /** Resolves when POSTed input may go on (at once unless input is paused). */
  inputResumed(): Promise<void> {
    const waiters = this.inputPausedWaiters;
    if (waiters === null) return Promise.resolve();
    return new Promise((resolve) => waiters.push(resolve));
  }

  /**
   * A transport request takes over a connection whose transport was lost (stateful reconnect): the old sink, if
   * the server had not noticed it die yet, is dropped; nothing queued for the old one is sent.
   */
  resume(sink: TransportSink): void {
    const previous = this.sink;
    this.sink = null;
    previous?.abandon?.();
    this.outbound = [];
    this.outboundLength = 0;
    this.attachSink(sink);
    this.markActive();
    this.app?.onTransportResumed?.();
  }

  /**
   * The transport of `sink` ended from the client's side. A reconnectable connection whose transport was lost waits
   * for a new one (the disconnect timeout runs meanwhile); any other ends now, and so does one the client closed on
   * purpose (`closedByClient`: a WebSocket close frame), as .NET ends it then.
   */
  transportEnded(sink: TransportSink, error?: Error, closedByClient = false): void {
    if (this.sink !== sink) return;
    if (this.reconnectable && !closedByClient && !this.closeRequested && this.state !== 'closed' && this.app !== null) {
      this.sink = null;
      this.markInactive(Date.now());
      this.app.onTransportLost?.();
      return;
    }
    this.transportClosed(error);
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

  /** Lets the transport check, once per heartbeat, that what it sends makes progress. */
  checkTransport(now: number): void {
    this.sink?.checkProgress?.(now);
  }

  /** Marks the connection gone, tells the application and the table once. */
  transportClosed(error?: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.transportActive = false;
    const sink = this.sink;
    this.sink = null;
    sink?.connectionClosed?.();
    this.outbound = [];
    this.outboundLength = 0;
    this.earlyInput = [];
    this.earlyInputLength = 0;
    this.resumeInput();
    const application = this.app;
    this.app = null;
    application?.onTransportClosed(error);
    this.onClosed?.(this);
  }
}
