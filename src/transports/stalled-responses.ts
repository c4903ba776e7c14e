/**
 * Releasing the sockets of the HTTP transports, so a client that stops reading cannot keep one — and the bytes in
 * its buffers — after its connection is over or while its response makes no progress:
 * - a response whose socket has sent none of its unsent bytes for `sendTimeoutMs` is aborted and cut, as ASP.NET
 *   Core closes a connection whose send outlasts its `TransportSendTimeout` (docs/protocol.md §1.11);
 * - once the server ended a Server-Sent Events stream, or a long-polling connection is over, its socket is closed,
 *   and cut if it is still open `sendTimeoutMs` later (a peer that never reads never takes the end of the stream).
 */
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';

/** Tracks whether a response's socket sends anything of what it holds, checked on every heartbeat. */
export class ResponseProgress {
  private sent = -1;
  private progressAt = 0;

  constructor(private readonly timeoutMs: number) {}

  /**
   * Aborts `response` (cutting its socket) when its socket has held unsent bytes for `timeoutMs` without any
   * byte going out to the network; returns whether it did. A slow reader makes progress and is left alone (the
   * outbound bound deals with one that falls too far behind).
   */
  check(response: ServerResponse, now: number): boolean {
    const socket = response.socket;
    if (response.destroyed || socket === null || socket.destroyed) return false;
    // `bytesWritten` counts what was handed to the socket, its unsent buffer included.
    const sent = socket.bytesWritten - socket.writableLength;
    if (socket.writableLength === 0 || sent !== this.sent) {
      this.sent = sent;
      this.progressAt = now;
      return false;
    }
    if (now - this.progressAt < this.timeoutMs) return false;
    cut(socket);
    return true;
  }
}

/**
 * Destroys a socket with a reset, so the kernel drops what it still holds for the peer: a plain close would leave
 * those bytes queued (FIN-WAIT-1) until the kernel gives up on a peer that never reads.
 */
function cut(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resetAndDestroy();
}

/** Cuts `socket` if it is still open `graceMs` from now (its peer did not close it in that time). */
export function cutIfStillOpen(socket: Socket | null | undefined, graceMs: number): void {
  if (socket === null || socket === undefined || socket.destroyed) return;
  const timer = setTimeout(() => cut(socket), graceMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Closes the socket a long-polling connection used last, once the connection is over: a FIN after what is queued,
 * and destroyed after `graceMs` if the peer has not closed it by then. Only when the socket is idle — an idle
 * keep-alive socket may be closed by the server at any time (RFC 9112 §9.6); one carrying another request of the
 * client is left alone.
 */
export function releaseIdleSocket(socket: Socket | null | undefined, graceMs: number): void {
  if (socket === null || socket === undefined || socket.destroyed) return;
  // Node's HTTP server sets `_httpMessage` to the response in progress on a socket.
  if ((socket as Socket & { _httpMessage?: unknown })._httpMessage != null) return;
  cutIfStillOpen(socket, graceMs);
  socket.end();
}
