/**
 * Everything one hub path runs on: its options, dispatcher (method table, filters), lifetime manager, connection
 * table, and the hub connections alive on this server. The transports hand it started connections; hubs and hub contexts reach
 * clients through it.
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import { PING } from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';
import { ConnectionManager } from '../connections/connection-manager';
import type { HttpConnection } from '../connections/http-connection';
import type { Heartbeat } from '../shared/heartbeat';
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager';
import { InMemoryLifetimeManager } from '../lifetime/in-memory-lifetime-manager';
import type { Logger } from '../shared/log-events';
import { lifetimeLimits, type ResolvedHubOptions } from './hub-options';
import type { GroupManager, HubClients, HubClientsFor, HubHttpRequest, UntypedClient } from './hub';
import type { HubPresence } from '../lifetime/presence';
import { LifetimeHubClients, lifetimeGroupManager } from './hub-clients';
import { HubConnectionContext, type HubConnectionHost } from './hub-connection-context';
import { HubMessageDispatcher } from './hub-dispatcher';
import { HubStats } from './hub-stats';

/**
 * Sending to a hub's clients from outside any hub method (ASP.NET Core's `IHubContext`, or `IHubContext<THub, T>`
 * for a hub with a client interface).
 */
export interface HubContext<TClient extends object = UntypedClient> {
  readonly clients: HubClientsFor<TClient>;
  readonly groups: GroupManager;
  /** Who is connected: this server's connections, or every server's with the Redis backplane's `presence`. */
  readonly presence: HubPresence;
}

/** The runtime of one hub path. */
export class HubEndpoint implements HubContext, HubConnectionHost {
  readonly connections: ConnectionManager;
  readonly clients: HubClients;
  readonly groups: GroupManager;
  /** Counters for metrics, read when they are scraped. */
  readonly stats = new HubStats();
  readonly presence: HubPresence;
  /** The hub's method table and filters; binds and runs what every connection of this hub invokes. */
  readonly dispatcher: HubMessageDispatcher;
  private readonly hubConnections = new Set<HubConnectionContext>();
  private readonly pings = new Map<HubProtocol, Buffer>();

  constructor(
    readonly options: ResolvedHubOptions,
    readonly heartbeat: Heartbeat,
    readonly log: Logger,
    readonly lifetime: HubLifetimeManager = new InMemoryLifetimeManager(lifetimeLimits(options)),
  ) {
    this.dispatcher = new HubMessageDispatcher(options, lifetime, this.stats, log);
    this.connections = new ConnectionManager(options.disconnectTimeoutMs);
    this.clients = new LifetimeHubClients(lifetime);
    this.groups = lifetimeGroupManager(lifetime, options.maximumGroupNameLength);
    if (lifetime.presence === undefined) throw new TypeError("A hub's lifetime manager must keep presence.");
    this.presence = lifetime.presence;
    heartbeat.add(this.connections);
  }

  /** Hub connections alive on this server. */
  get connectionCount(): number {
    return this.hubConnections.size;
  }

  /**
   * Hub connections alive on this server by transport and protocol (`''` before the handshake chose one), counted
   * now: a metrics scrape walks the connections instead of every connection keeping a counter up to date.
   */
  countConnections(): { transport: TransportName; protocol: string; count: number }[] {
    const counts = new Map<string, { transport: TransportName; protocol: string; count: number }>();
    for (const connection of this.hubConnections) {
      const transport = connection.transport;
      const protocol = connection.protocol;
      const key = `${transport} ${protocol}`;
      const entry = counts.get(key);
      if (entry === undefined) counts.set(key, { transport, protocol, count: 1 });
      else entry.count++;
    }
    return [...counts.values()];
  }

  /** The hub connection of this server with this public id, if any (a scan: for management calls, not per message). */
  findConnection(connectionId: string): HubConnectionContext | undefined {
    for (const connection of this.hubConnections) if (connection.connectionId === connectionId) return connection;
    return undefined;
  }

  /** The hub connections alive on this server. */
  liveConnections(): IterableIterator<HubConnectionContext> {
    return this.hubConnections.values();
  }

  /**
   * Starts the hub connection on top of an HTTP connection whose transport just started. Its user is the one
   * resolved when it was created (negotiate, or the WebSocket request of `skipNegotiation`); the transport gives
   * the copy of the request it keeps and when its authentication expires (`Infinity` for never, and always
   * without `closeOnAuthenticationExpiration`).
   */
  startConnection(
    http: HttpConnection,
    request: HubHttpRequest,
    authenticationExpiresAt: number,
    now = Date.now(),
  ): HubConnectionContext {
    const connection = new HubConnectionContext(http, this, request, http.userIdentifier, now);
    if (this.options.closeOnAuthenticationExpiration) connection.authenticationExpiresAt = authenticationExpiresAt;
    http.application = connection;
    this.hubConnections.add(connection);
    this.heartbeat.add(connection);
    return connection;
  }

  /** Forgets a hub connection that ended (its HTTP connection leaves the table when its transport ends). */
  connectionEnded(connection: HubConnectionContext): void {
    this.hubConnections.delete(connection);
    this.heartbeat.delete(connection);
  }

  /** The framed Ping of a protocol, serialized once. */
  pingBytes(protocol: HubProtocol): Buffer {
    let bytes = this.pings.get(protocol);
    if (bytes === undefined) this.pings.set(protocol, (bytes = protocol.writeMessage(PING)));
    return bytes;
  }

  /**
   * Closes every connection: hub connections get a Close message (with `allowReconnect` when asked), connections
   * that never started are dropped.
   */
  shutdown(allowReconnect: boolean): void {
    for (const connection of [...this.hubConnections]) connection.shutdown(allowReconnect);
    // Connections without a hub connection (negotiated, never started) just end.
    for (const http of [...this.connections.all()]) if (http.application === null) http.close();
  }

  /**
   * The first step of a graceful shutdown: each hub connection is closed (Close message, with `allowReconnect` when
   * asked) as soon as none of its invocations or streams is running — at once for idle ones. Connections that never
   * started are dropped. New connections are refused by the routes meanwhile (see the plugin's `drain`).
   */
  drain(allowReconnect: boolean): void {
    for (const connection of [...this.hubConnections]) connection.closeWhenIdle(allowReconnect);
    for (const http of [...this.connections.all()]) if (http.application === null) http.close();
  }

  /** Releases the lifetime manager. */
  async close(): Promise<void> {
    this.heartbeat.delete(this.connections);
    await this.lifetime.close();
  }
}
