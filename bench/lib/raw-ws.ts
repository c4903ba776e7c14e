/**
 * A minimal WebSocket client over a plain TCP socket, for load generation.
 *
 * Why not the `ws` package: a load generator on the same 2-core machine as the server competes with it for CPU,
 * and every cycle the client spends is one the server does not get. This client does the least a conforming
 * client must: one upgrade request, frame parsing without copying unless a frame spans TCP chunks, answers to
 * pings, and masked frames with an all-zero mask key (valid per RFC 6455 §5.3, and it spares the XOR). Every peer
 * in the benchmark is driven through it, so the client cost is the same whichever server is measured.
 */
import * as net from 'node:net';

/** Opcodes of RFC 6455 §5.2 the generators see. */
export const Opcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;

const UPGRADE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const HEADER_END = Buffer.from('\r\n\r\n');

/** Called for each whole message (frames of a fragmented message are joined). */
export type FrameHandler = (opcode: number, payload: Buffer) => void;

/** Options of {@link RawWebSocket.connect}. */
export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Request target: path and query. */
  readonly path: string;
  /** Source address to bind, to spread many connections over several loopback addresses (ephemeral ports). */
  readonly localAddress?: string;
  readonly onMessage: FrameHandler;
  readonly onClose?: () => void;
}

/** One client WebSocket. */
export class RawWebSocket {
  private pending: Buffer | null = null;
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly onMessage: FrameHandler,
    private readonly onClose: (() => void) | undefined,
  ) {}

  /** Opens the TCP connection and completes the upgrade; resolves once the server answered 101. */
  static connect(options: ConnectOptions): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress });
      socket.setNoDelay(true);
      let head: Buffer = Buffer.alloc(0);
      const fail = (error: Error) => {
        socket.destroy();
        reject(error);
      };
      const onHandshakeData = (chunk: Buffer) => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        const status = head.toString('latin1', 0, head.indexOf('\r\n'));
        socket.off('data', onHandshakeData);
        socket.off('error', fail);
        if (!/^HTTP\/1\.1 101/.test(status)) return fail(new Error(`upgrade refused: ${status}`));
        const client = new RawWebSocket(socket, options.onMessage, options.onClose);
        socket.on('data', (data: Buffer) => client.receive(data));
        socket.on('error', () => client.terminate());
        socket.on('close', () => client.markClosed());
        resolve(client);
        const rest = head.subarray(end + HEADER_END.length);
        if (rest.length > 0) client.receive(rest);
      };
      socket.on('data', onHandshakeData);
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(
          `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${UPGRADE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  /** Sends one frame (Text for strings unless `binary`). */
  send(data: string | Buffer, binary = typeof data !== 'string'): void {
    if (this.closed) return;
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.socket.write(frame(binary ? Opcode.Binary : Opcode.Text, payload));
  }

  /** Sends a close frame and ends the TCP connection. */
  close(): void {
    if (this.closed) return;
    this.socket.write(frame(Opcode.Close, Buffer.from([0x03, 0xe8])));
    this.socket.end();
    this.closed = true;
  }

  /** Drops the connection without a close frame. */
  terminate(): void {
    this.socket.destroy();
    this.markClosed();
  }

  private markClosed(): void {
    if (this.closed && this.onClose === undefined) return;
    const first = !this.closed;
    this.closed = true;
    if (first) this.onClose?.();
  }

  private receive(chunk: Buffer): void {
    let data = chunk;
    if (this.pending !== null) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let offset = 0;
    const length = data.length;
    while (offset + 2 <= length) {
      const b0 = data[offset];
      let size = data[offset + 1] & 0x7f;
      let header = 2;
      if (size === 126) {
        if (offset + 4 > length) break;
        size = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (size === 127) {
        if (offset + 10 > length) break;
        size = data.readUInt32BE(offset + 2) * 0x1_0000_0000 + data.readUInt32BE(offset + 6);
        header = 10;
      }
      // Servers never mask (RFC 6455 §5.1), so there is no mask key to skip.
      if (offset + header + size > length) break;
      const payload = data.subarray(offset + header, offset + header + size);
      offset += header + size;
      this.frameReceived(b0 & 0x0f, (b0 & 0x80) !== 0, payload);
    }
    if (offset < length) this.pending = data.subarray(offset);
  }

  private frameReceived(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode === Opcode.Ping) {
      this.socket.write(frame(Opcode.Pong, payload));
      return;
    }
    if (opcode === Opcode.Pong) return;
    if (opcode === Opcode.Close) {
      this.close();
      return;
    }
    if (opcode === Opcode.Continuation || !fin) {
      if (opcode !== Opcode.Continuation) this.fragmentOpcode = opcode;
      this.fragments.push(Buffer.from(payload));
      if (!fin) return;
      const whole = Buffer.concat(this.fragments);
      this.fragments = [];
      this.onMessage(this.fragmentOpcode, whole);
      return;
    }
    this.onMessage(opcode, payload);
  }
}

/** A masked client frame with the all-zero mask key. */
function frame(opcode: number, payload: Buffer): Buffer {
  const size = payload.length;
  const header = size < 126 ? 6 : size < 0x10000 ? 8 : 14;
  const out = Buffer.allocUnsafe(header + size);
  out[0] = 0x80 | opcode;
  if (size < 126) {
    out[1] = 0x80 | size;
  } else if (size < 0x10000) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(size, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(size / 0x1_0000_0000), 2);
    out.writeUInt32BE(size >>> 0, 6);
  }
  out.writeUInt32BE(0, header - 4);
  payload.copy(out, header);
  return out;
}
