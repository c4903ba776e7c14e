/**
 * The WebSockets transport (docs/protocol.md §1.5): one socket per connection, no subprotocol. Inbound frame boundaries
 * mean nothing (every payload byte goes to the connection); each outbound frame carries everything queued during one
 * event-loop turn — whole hub messages only — as a Text frame for Text protocols and a Binary frame for binary
 * ones. Closing sends the queued bytes, then a close frame with status 1000, and gives the peer .NET's close
 * timeout to answer before the socket is cut.
 *
 * Frames are built here rather than by ws when that is safe (no extension negotiated): a broadcast queues the same
 * buffers to every recipient, so the flush of one turn frames them once and writes the same bytes to every socket.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { HttpConnection, TransportSink } from '../connections/http-connection';

/**
 * Normal closure status, the only one the official clients treat as clean
 * (src/SignalR/clients/ts/signalr/src/WebSocketTransport.ts@v10.0.0 L162-L184).
 */
const NORMAL_CLOSURE = 1000;
/** What `ws` reports when the connection ended without a close frame (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006;

/** How long a closing socket waits for the peer's close frame (`WebSocketOptions.CloseTimeout`, 5 s). */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * Above this a frame is left to ws, which writes header and payload without copying the payload; below it, copying
 * into one pre-framed buffer is cheaper than ws's per-socket framing and two-buffer write.
 */
const PREFRAME_LIMIT = 64 * 1024;

/**
 * The frame built last, by the buffers it holds. A broadcast queues the same buffers to every recipient, and the
 * flush of one event-loop turn drains connections one after another, so recipients after the first find their
 * frame here: one frame built per broadcast turn, the same bytes written to every socket. Cleared after the turn so
 * it never keeps a large payload alive.
 */
const lastFrame = { parts: [] as Buffer[], binary: false, frame: null as Buffer | null, clearScheduled: false };

function clearLastFrame(): void {
  lastFrame.parts = [];
  lastFrame.frame = null;
  lastFrame.clearScheduled = false;
}

function sameParts(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A final, unmasked server frame (RFC 6455 §5.2) holding `parts` back to back. */
function buildFrame(parts: readonly Buffer[], length: number, binary: boolean): Buffer {
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x80 | (binary ? 0x2 : 0x1);
  if (length < 126) {
    frame[1] = length;
  } else if (length < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  let offset = header;
  for (const part of parts) offset += part.copy(frame, offset);
  return frame;
}

/** The frame for `parts`: the last one built when it holds the same buffers, else a new one. */
function frameFor(parts: Buffer[], length: number, binary: boolean): Buffer {
  if (lastFrame.frame !== null && lastFrame.binary === binary && sameParts(parts, lastFrame.parts))
    return lastFrame.frame;
  const frame = buildFrame(parts, length, binary);
  lastFrame.parts = parts;
  lastFrame.binary = binary;
  lastFrame.frame = frame;
  if (!lastFrame.clearScheduled) {
    lastFrame.clearScheduled = true;
    setImmediate(clearLastFrame);
  }
  return frame;
}

class WebSocketSink implements TransportSink {
  /**
   * ws's underlying TCP socket (an internal field of ws), when pre-framed bytes may go straight to it: only without
   * a negotiated extension, when ws writes every frame synchronously and queues nothing, so frames stay in order.
   * Extensions are fixed by the handshake, so this is decided once.
   */
  private readonly raw: Socket | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly connection: HttpConnection,
  ) {
    const raw = (socket as unknown as { _socket?: Socket })._socket;
    this.raw = socket.extensions === '' ? raw : undefined;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  onOutbound(): void {
    const parts = this.connection.takeOutboundParts();
    if (parts === null || this.socket.readyState !== this.socket.OPEN) return;
    const binary = this.connection.transferFormat === 'Binary';
    let length = 0;
    for (const part of parts) length += part.length;
    if (this.raw !== undefined && length <= PREFRAME_LIMIT) {
      this.raw.write(frameFor(parts, length, binary));
    } else {
      this.socket.send(parts.length === 1 ? parts[0] : Buffer.concat(parts, length), { binary });
    }
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

// The listeners below are shared by every socket and find their connection through the socket: a pair of closures
// per connection would cost more than the one property (idle memory, bench/heap-profile.ts).
const kSink = Symbol('fastify-signalr.sink');
type SocketWithSink = WebSocket & { [kSink]: WebSocketSink };

/** Hands a received payload to the socket's connection. */
function receiveFromSocket(this: WebSocket, data: Buffer | ArrayBuffer | Buffer[]): void {
  // With the default binaryType every payload, fragmented or not, arrives as one Buffer.
  (this as SocketWithSink)[kSink].connection.receive(data as Buffer);
}

/** Ends the socket's transport with the close code's meaning. */
function socketClosed(this: WebSocket, code: number): void {
  const sink = (this as SocketWithSink)[kSink];
  // 1000 is a clean close; 1005 means the peer sent none (the official Node client on stop()). Any close frame is
  // the client leaving; only 1006, a connection lost without one, leaves a stateful connection open to a reconnect.
  sink.connection.transportEnded(
    sink,
    code === NORMAL_CLOSURE || code === 1005 ? undefined : new Error(`WebSocket closed with status code ${code}.`),
    code !== ABNORMAL_CLOSURE,
  );
}

/**
 * Closes with status 1000 when no status is given. ws answers a peer's close frame that carries no status with a
 * close frame that carries none either (the peer then reports 1005); ASP.NET Core answers every close with a
 * status, 1000 when the peer gave none (`WebSocketsServerTransport` closes with `NormalClosure`), and so does this.
 * Installed on each accepted socket as its own `close`, because ws calls `close()` on itself for that answer.
 */
function closeWithStatus(this: WebSocket, code?: number, data?: string | Buffer): void {
  (Object.getPrototypeOf(this) as WebSocket).close.call(this, code ?? NORMAL_CLOSURE, data);
}

/** Ends a socket that failed; its 'close' event then ends the connection with status 1006. */
function terminateOnError(this: WebSocket): void {
  this.terminate();
}

/**
 * Binds an accepted WebSocket to its connection: the first transport of a new connection, or a reconnecting one
 * taking over a connection whose socket was lost (stateful reconnect, docs/protocol.md §2.10).
 */
export function attachWebSocket(socket: WebSocket, connection: HttpConnection): void {
  // @fastify/websocket's 'error' listener closes over the upgrade's request and reply, so they would live as long as
  // the socket. Its only effect is ending the socket, which this shared listener does without holding anything.
  socket.removeAllListeners('error');
  socket.on('error', terminateOnError);
  socket.close = closeWithStatus;
  const sink = new WebSocketSink(socket, connection);
  if (connection.application !== null) connection.resume(sink);
  else {
    connection.markActive();
    connection.attachSink(sink);
  }
  (socket as SocketWithSink)[kSink] = sink;
  socket.on('message', receiveFromSocket);
  socket.on('close', socketClosed);
}
