/**
 * The connection table of one hub endpoint: token → connection (docs/protocol.md §1.3: every `?id=` lookup uses the
 * token, never the public id), and expiry of connections that are not in use.
 */
import type { TransportName } from '../../protocol/negotiate';
import type { HeartbeatParticipant } from '../shared/heartbeat';
import { newConnectionKey } from '../shared/ids';
import { HttpConnection } from './http-connection';

/** Owns the HTTP connections of one hub endpoint. */
export class ConnectionManager implements HeartbeatParticipant {
  private readonly byToken = new Map<string, HttpConnection>();
  /**
   * Connections as negotiated, oldest first, for {@link evictOldestUnstarted}; one that started since is dropped
   * from here when it is next looked at.
   */
  private readonly unstarted = new Set<HttpConnection>();

  /**
   * @param disconnectTimeoutMs a connection that has no transport request in progress for this long is dropped:
   *   a negotiated connection that never connects, or a long-polling connection that stopped polling
   */
  constructor(private readonly disconnectTimeoutMs: number) {}

  /** Connections in the table. */
  get size(): number {
    return this.byToken.size;
  }

  /**
   * Creates a connection. With negotiate version 1 or above the token is a second independent random value; for
   * version 0 and `skipNegotiation` it equals the id
   * (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionManager.cs@v10.0.0 L63-L74).
   */
  create(negotiateVersion: number, now = Date.now()): HttpConnection {
    const id = newConnectionKey();
    const token = negotiateVersion > 0 ? newConnectionKey() : id;
    const connection = new HttpConnection(id, token, negotiateVersion, now);
    connection.onClosed = this.forget;
    this.byToken.set(token, connection);
    this.unstarted.add(connection);
    return connection;
  }

  /** The connection a `?id=` value selects, if it exists and is not closed. */
  get(token: string): HttpConnection | undefined {
    const connection = this.byToken.get(token);
    return connection !== undefined && connection.state !== 'closed' ? connection : undefined;
  }

  private readonly forget = (connection: HttpConnection): void => {
    if (this.byToken.get(connection.connectionToken) === connection) this.byToken.delete(connection.connectionToken);
    this.unstarted.delete(connection);
  };

  /**
   * Ends the oldest connection that was negotiated and never started a transport, so that a full server
   * (`maximumConnections`) makes room for a new one instead of being kept full by negotiations nobody uses.
   * Returns whether there was one.
   */
  evictOldestUnstarted(): boolean {
    for (const connection of this.unstarted) {
      this.unstarted.delete(connection);
      if (connection.state !== 'new' || connection.transportActive) continue;
      connection.expired = true;
      connection.transportClosed();
      return true;
    }
    return false;
  }

  /** Every connection, for shutdown. */
  all(): IterableIterator<HttpConnection> {
    return this.byToken.values();
  }

  /** Number of connections bound to each transport. */
  countByTransport(): Record<TransportName, number> {
    const counts: Record<TransportName, number> = { WebSockets: 0, ServerSentEvents: 0, LongPolling: 0 };
    for (const connection of this.byToken.values()) if (connection.transport !== null) counts[connection.transport]++;
    return counts;
  }

  onHeartbeat(now: number): void {
    for (const connection of this.byToken.values()) {
      connection.checkTransport(now);
      if (connection.transportActive || now - connection.lastSeen < this.disconnectTimeoutMs) continue;
      connection.expired = true;
      connection.transportClosed();
    }
  }
}
