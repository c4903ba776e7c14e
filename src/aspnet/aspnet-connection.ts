/**
 * One ASP.NET SignalR 2.x connection on this server: its seats in the hubs it subscribed to (`connectionData`), the
 * bounded buffer of messages with their ids (the cursor a client polls and reconnects with), the transport it is
 * reached through now, and the answers `/send` requests wait for (docs/protocol.md §7.4).
 *
 * A 2.x connection outlives its transports: long polling has one per poll, and a dropped Server-Sent Events or
 * WebSocket transport is replaced by `/reconnect`. Messages sent meanwhile stay in the buffer; the next transport
 * gets every message after the client's cursor. Without a transport for `disconnectTimeoutMs`, the connection ends.
 */
import { logEvent } from '../shared/log-events';
import { randomBytes } from 'node:crypto';
import type { TransportName } from '../../protocol/negotiate';
import { writePersistentResponse, type LegacyHubRequest } from '../../protocol/aspnet/wire';
import type { HubHttpRequest } from '../hub/hub';
import type { HubEndpoint } from '../hub/hub-endpoint';
import { AspNetHubSeat, legacyHubProtocol, type SeatOwner } from './aspnet-hub-seat';
import type { ResolvedAspNetSignalROptions } from './aspnet-options';

/** Where a 2.x connection's messages go now: a held poll, an event stream, a WebSocket. */
export interface LegacyTransport {
  readonly name: TransportName;
  /** Whether one delivery ends it (a poll's answer). */
  readonly oneShot: boolean;
  /** Sends a persistent response; `cursor` is the one it carries. */
  deliver(bytes: Buffer, cursor: string): void;
  /** Sends a hub response outside a persistent response (WebSockets only: the others answer in `/send`). */
  deliverAnswer?(bytes: Buffer): void;
  /** Bytes written and not yet taken by the client's socket. */
  readonly pendingBytes: number;
  /** An idle keep-alive (`{}`, `data: {}`). */
  keepAlive(): void;
  /** Ends it (server shutdown, the connection ended). */
  end(): void;
  /** Cuts it at once, without waiting for what it holds to be read (a slow client). */
  cut(): void;
}

interface BufferedMessage {
  readonly id: number;
  readonly bytes: Buffer;
}

/** What the connection needs of the 2.x endpoint. */
export interface LegacyConnectionHost {
  readonly options: ResolvedAspNetSignalROptions;
  /** The groups token for these prefixed group names. */
  groupsToken(connectionId: string, groups: readonly string[]): string;
  /** The connection ended: forget it. */
  connectionEnded(connection: AspNetConnection): void;
  /** A transport held more than the outbound bound for a client that does not read (logged). */
  slowClient(connection: AspNetConnection, waiting: number, limit: number): void;
}

/** One 2.x connection. */
export class AspNetConnection implements SeatOwner {
  /** Marks this connection's cursors: a cursor of another connection object (a restart) counts as none. */
  private readonly cursorTag = randomBytes(4).toString('hex');
  private readonly seats = new Map<string, AspNetHubSeat>();
  private readonly buffer: BufferedMessage[] = [];
  private lastId = 0;
  private transport: LegacyTransport | null = null;
  /** The id of the last message handed to the current transport. */
  private sentId = 0;
  private flushScheduled = false;
  /** The groups last told to the client, as JSON. */
  private sentGroups = '[]';
  /** Whether the groups may differ from {@link sentGroups}: set by the seats' group changes and the heartbeat's check. */
  private groupsDirty = false;
  /** When the connection last had a transport (for the disconnect timeout). */
  private lastSeenAt = Date.now();
  private lastWriteAt = Date.now();
  private pollStartedAt = 0;
  private readonly answers = new Map<string, (bytes: Buffer) => void>();
  private readonly abortController = new AbortController();
  private ended = false;
  transportName: TransportName;
  /** Whether a transport was ever attached (a later connect is the client's own retry). */
  private everAttached = false;
  /** Whether `/start` ran the hubs' `onConnected`. */
  started = false;

  constructor(
    readonly connectionId: string,
    readonly userIdentifier: string | undefined,
    public httpRequest: HubHttpRequest,
    transportName: TransportName,
    private readonly host: LegacyConnectionHost,
  ) {
    this.transportName = transportName;
  }

  get connectionAborted(): AbortSignal {
    return this.abortController.signal;
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  /** Adds the connection to a hub: registered with its lifetime manager, in the groups a groups token names. */
  async join(hubName: string, endpoint: HubEndpoint, groups: readonly string[]): Promise<void> {
    const seat = new AspNetHubSeat(hubName, endpoint, this, legacyHubProtocol(hubName));
    this.seats.set(hubName.toLowerCase(), seat);
    await endpoint.lifetime.onConnected(seat);
    seat.registered = true;
    for (const group of groups) await endpoint.lifetime.addToGroup(this.connectionId, group);
    this.sentGroups = JSON.stringify(this.currentGroups());
  }

  /** Runs every hub's `onConnected` (2.x: on `/start`, or at once for a connection recreated on reconnect). */
  async connectHubs(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const seat of this.seats.values()) {
      await seat.endpoint.dispatcher.onConnected(seat);
      seat.hubConnected = true;
    }
  }

  seat(hubName: string): AspNetHubSeat | undefined {
    return this.seats.get(hubName.toLowerCase());
  }

  // Transports -------------------------------------------------------------------------------------------------------

  /** The cursor of the newest message. */
  get cursor(): string {
    return `${this.cursorTag}-${this.lastId}`;
  }

  /** The id a client's cursor stands for here: 0 for none or another connection's. */
  private idOf(cursor: string | undefined): number {
    if (cursor === undefined) return 0;
    const dash = cursor.lastIndexOf('-');
    if (dash < 0 || cursor.slice(0, dash) !== this.cursorTag) return 0;
    const id = Number(cursor.slice(dash + 1));
    return Number.isSafeInteger(id) && id >= 0 && id <= this.lastId ? id : 0;
  }

  /**
   * A transport takes over, the previous one (if any) ending. `cursor` is what the client last received; messages
   * after it still in the buffer go out at once. A connect's first answer is the initializing response.
   */
  attach(transport: LegacyTransport, cursor: string | undefined, initializing: boolean): void {
    const previous = this.transport;
    this.transport = transport;
    if (previous !== null && previous !== transport) previous.end();
    this.transportName = transport.name;
    this.pollStartedAt = Date.now();
    this.lastSeenAt = Date.now();
    const first = !this.everAttached;
    this.everAttached = true;
    if (initializing && first) {
      this.sentId = this.lastId;
      this.send(writePersistentResponse(this.cursor, [], { initializing: true }));
      return;
    }
    if (initializing) {
      // A second connect of the same connection: an event stream the browser (or the eventsource package) opened
      // again by itself. It carries the last event id it saw (each event's id is its cursor) when it saw any; it
      // gets the initializing response again, with what it missed, so messages sent while it was away are not lost.
      if (cursor !== undefined) this.sentId = this.idOf(cursor);
      this.flush(true);
      return;
    }
    this.sentId = this.idOf(cursor);
    if (this.sentId < this.lastId || this.groupsDirty) this.flush();
  }

  /** The transport went away (a poll answered, a socket closed): the disconnect timeout runs from now. */
  detach(transport: LegacyTransport): void {
    if (this.transport !== transport) return;
    this.transport = null;
    this.lastSeenAt = Date.now();
  }

  enqueue(bytes: Buffer): void {
    if (this.ended) return;
    this.buffer.push({ id: ++this.lastId, bytes });
    // Trimmed in steps of the bound, so a full buffer costs no copy per message; at least the bound is kept.
    const size = this.host.options.messageBufferSize;
    if (this.buffer.length >= 2 * size) this.buffer.splice(0, this.buffer.length - size);
    this.scheduleFlush();
  }

  /** A seat changed this connection's groups: the next response carries a new groups token. */
  groupsChanged(): void {
    this.groupsDirty = true;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.transport === null) return;
    this.flushScheduled = true;
    // Every message of this event-loop turn leaves in one response.
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.transport !== null && (this.sentId < this.lastId || this.groupsDirty)) this.flush();
    });
  }

  private currentGroups(): string[] {
    const groups: string[] = [];
    for (const seat of this.seats.values()) {
      const lifetime = seat.endpoint.lifetime as { localGroupsOf?: (id: string) => readonly string[] };
      for (const group of lifetime.localGroupsOf?.(this.connectionId) ?? []) groups.push(`${seat.hubName}.${group}`);
    }
    return groups.sort();
  }

  /** Sends every buffered message after the transport's cursor, and the groups token when the groups changed. */
  private flush(initializing = false): void {
    const messages: Buffer[] = [];
    // Ids are consecutive: the first message after the cursor is found by arithmetic, not by a scan.
    const first = this.buffer.length === 0 ? 0 : Math.max(0, this.sentId + 1 - this.buffer[0].id);
    for (let i = first; i < this.buffer.length; i++) messages.push(this.buffer[i].bytes);
    let groupsToken: string | undefined;
    if (this.groupsDirty) {
      this.groupsDirty = false;
      const groups = this.currentGroups();
      const groupsJson = JSON.stringify(groups);
      if (groupsJson !== this.sentGroups) groupsToken = this.host.groupsToken(this.connectionId, groups);
      this.sentGroups = groupsJson;
    }
    this.sentId = this.lastId;
    const delay = this.host.options.longPollDelayMs;
    this.send(
      writePersistentResponse(this.cursor, messages, {
        ...(initializing && { initializing: true }),
        ...(groupsToken !== undefined && { groupsToken }),
        ...(this.transport?.oneShot === true && delay > 0 && { longPollDelay: delay }),
      }),
    );
  }

  private send(bytes: Buffer): void {
    const transport = this.transport;
    if (transport === null) return;
    this.lastWriteAt = Date.now();
    if (transport.oneShot) this.detach(transport);
    transport.deliver(bytes, this.cursor);
    // A client that does not read must not grow server memory: past the bound it is cut, and what it missed stays
    // in the buffer should it reconnect.
    const limit = this.host.options.maximumBufferedOutboundBytes;
    if (limit !== null && transport.pendingBytes > limit) {
      this.host.slowClient(this, transport.pendingBytes, limit);
      this.detach(transport);
      transport.cut();
    }
  }

  /** Waits for the answer to `invocationId` (a `/send` over long polling or Server-Sent Events). */
  awaitAnswer(invocationId: string): Promise<Buffer> {
    return new Promise((resolve) => this.answers.set(invocationId, resolve));
  }

  answer(invocationId: string, bytes: Buffer): void {
    const waiting = this.answers.get(invocationId);
    if (waiting !== undefined) {
      this.answers.delete(invocationId);
      waiting(bytes);
      return;
    }
    const transport = this.transport;
    if (transport?.deliverAnswer === undefined) return;
    // What was queued before the answer (progress reports, client calls) goes first, as it was sent first.
    if (this.sentId < this.lastId) this.flush();
    transport.deliverAnswer(bytes);
  }

  /** A hub request: to the seat of its hub. Returns false when the connection is not subscribed to that hub. */
  receive(request: LegacyHubRequest): boolean {
    const seat = this.seat(request.hub);
    if (seat === undefined) return false;
    seat.invoke(request);
    return true;
  }

  /** Keep-alives, the held poll's timeout and the disconnect timeout; called on every heartbeat tick. */
  onHeartbeat(now: number): void {
    const options = this.host.options;
    // Groups changed from elsewhere (the hub context, another server) reach the client within a tick.
    if (!this.groupsDirty && JSON.stringify(this.currentGroups()) !== this.sentGroups) this.groupsChanged();
    const transport = this.transport;
    if (transport === null) {
      if (now - this.lastSeenAt >= options.disconnectTimeoutMs) void this.end();
      return;
    }
    if (transport.oneShot) {
      // A poll held for the connection timeout comes back empty; the client polls again.
      if (now - this.pollStartedAt >= options.connectionTimeoutMs) this.send(writePersistentResponse(this.cursor, []));
      return;
    }
    if (options.keepAliveMs !== null && now - this.lastWriteAt >= options.keepAliveMs) {
      this.lastWriteAt = now;
      transport.keepAlive();
    }
  }

  /**
   * The server shuts down: the client is told to reconnect (`"T":1`, as a 2.x server does while its host stops), so
   * behind a load balancer it moves to another server at once; then the connection ends here.
   */
  async shutdown(): Promise<void> {
    if (this.ended) return;
    this.send(writePersistentResponse(this.cursor, [], { reconnect: true }));
    await this.end();
  }

  /** The server ends the connection: the client is told with an error response and stops. */
  abortFromServer(error: string | undefined): void {
    if (this.ended) return;
    this.send(writePersistentResponse(this.cursor, [], { error: error ?? 'The connection was closed by the server.' }));
    void this.end();
  }

  /** Ends the connection once: the hubs' `onDisconnected`, then the lifetime managers forget it, as in .NET. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.abortController.abort();
    const transport = this.transport;
    this.transport = null;
    transport?.end();
    for (const resolve of this.answers.values()) resolve(Buffer.alloc(0));
    this.answers.clear();
    this.host.connectionEnded(this);
    for (const seat of this.seats.values()) {
      seat.closed = true;
      const log = seat.endpoint.log;
      if (seat.hubConnected) {
        try {
          // 2.x's `stopCalled` has no Core counterpart, and a client that went away is no error of the connection.
          await seat.endpoint.dispatcher.onDisconnected(seat, undefined);
        } catch (error) {
          logEvent(
            log,
            'error',
            'signalr.connection.error',
            { err: error, connectionId: this.connectionId },
            'onDisconnected failed',
          );
        }
      }
      if (seat.registered) {
        try {
          await seat.endpoint.lifetime.onDisconnected(seat);
        } catch (error) {
          logEvent(
            log,
            'error',
            'signalr.connection.error',
            { err: error, connectionId: this.connectionId },
            'lifetime manager failed',
          );
        }
      }
    }
  }
}
