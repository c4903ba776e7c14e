/**
 * The WebSockets transport (spec §1.5): one socket per connection, no subprotocol. Inbound frame boundaries mean
 * nothing (every payload byte goes to the connection); each outbound frame carries everything queued during one
 * event-loop turn — whole hub messages only — as a Text frame for Text protocols and a Binary frame for binary
 * ones. Closing sends the queued bytes, then a close frame with status 1000, and gives the peer .NET's close
 * timeout to answer before the socket is cut.
 */
import type { WebSocket } from 'ws';
import type { HttpConnection, TransportSink } from '../connections/http-connection';

/** Normal closure status, the only one the official clients treat as clean (TS:WS@v10 L162-L184). */
const NORMAL_CLOSURE = 1000;
/** What `ws` reports when the connection ended without a close frame (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006;

/** How long a closing socket waits for the peer's close frame (`WebSocketOptions.CloseTimeout`, 5 s). */
const CLOSE_TIMEOUT_MS = 5000;

class WebSocketSink implements TransportSink {
  constructor(
    private readonly socket: WebSocket,
    private readonly connection: HttpConnection,
  ) {}

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  onOutbound(): void {
    const data = this.connection.takeOutbound();
    if (data === null || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(data, { binary: this.connection.transferFormat === 'Binary' });
  }

  close(): void {
    this.onOutbound();
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.close(NORMAL_CLOSURE);
    // A peer that stops reading never answers the close frame; don't keep its socket for ws's 30 s.
    setTimeout(() => this.socket.terminate(), CLOSE_TIMEOUT_MS).unref();
  }

  pauseInput(): void {
    this.socket.pause();
  }

  resumeInput(): void {
    this.socket.resume();
  }

  abandon(): void {
    this.socket.terminate();
  }
}

/**
 * Binds an accepted WebSocket to its connection: the first transport of a new connection, or a reconnecting one
 * taking over a connection whose socket was lost (stateful reconnect, spec §2.10).
 */
export function attachWebSocket(socket: WebSocket, connection: HttpConnection): void {
  const sink = new WebSocketSink(socket, connection);
  if (connection.application !== null) connection.resume(sink);
  else {
    connection.markActive();
    connection.attachSink(sink);
  }
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    // With the default binaryType every payload, fragmented or not, arrives as one Buffer.
    connection.receive(data as Buffer);
  });
  socket.on('close', (code: number) => {
    // 1000 is a clean close; 1005 means the peer sent none (the official Node client on stop()). Any close frame is
    // the client leaving; only 1006, a connection lost without one, leaves a stateful connection open to a
    // reconnect.
    connection.transportEnded(
      sink,
      code === NORMAL_CLOSURE || code === 1005 ? undefined : new Error(`WebSocket closed with status code ${code}.`),
      code !== ABNORMAL_CLOSURE,
    );
  });
}
