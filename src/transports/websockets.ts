/**
 * The WebSockets transport (spec §1.5): one socket per connection, no subprotocol. Inbound frame boundaries mean
 * nothing (every payload byte goes to the connection); each outbound frame carries everything queued during one
 * event-loop turn — whole hub messages only — as a Text frame for Text protocols and a Binary frame for binary
 * ones. Closing sends the queued bytes, then a close frame with status 1000.
 */
import type { WebSocket } from 'ws';
import type { HttpConnection, TransportSink } from '../connections/http-connection';

/** Normal closure status, the only one the official clients treat as clean (TS:WS@v10 L162-L184). */
const NORMAL_CLOSURE = 1000;

class WebSocketSink implements TransportSink {
  constructor(
    private readonly socket: WebSocket,
    private readonly connection: HttpConnection,
  ) {}

  onOutbound(): void {
    const data = this.connection.takeOutbound();
    if (data === null || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(data, { binary: this.connection.transferFormat === 'Binary' });
  }

  close(): void {
    this.onOutbound();
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(NORMAL_CLOSURE);
  }

  pauseInput(): void {
    this.socket.pause();
  }

  resumeInput(): void {
    this.socket.resume();
  }
}

/** Ends a socket that failed; its 'close' event then ends the connection with status 1006. */
function terminateOnError(this: WebSocket): void {
  this.terminate();
}

/** Binds an accepted WebSocket to its connection. */
export function attachWebSocket(socket: WebSocket, connection: HttpConnection): void {
  // @fastify/websocket's 'error' listener closes over the upgrade's request and reply, so they would live as long as
  // the socket. Its only effect is ending the socket, which this shared listener does without holding anything.
  socket.removeAllListeners('error');
  socket.on('error', terminateOnError);
  connection.markActive();
  connection.attachSink(new WebSocketSink(socket, connection));
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    // With the default binaryType every payload, fragmented or not, arrives as one Buffer.
    connection.receive(data as Buffer);
  });
  socket.on('close', (code: number) => {
    // 1000 is a clean close; 1005 means the peer sent none (the official Node client on stop()).
    connection.transportClosed(
      code === NORMAL_CLOSURE || code === 1005 ? undefined : new Error(`WebSocket closed with status code ${code}.`),
    );
  });
}
