/**
 * The long-polling transport (docs/protocol.md §1.7, §1.8): server-to-client messages go out as the bodies of
 * successive GET polls; client-to-server messages arrive by POST. One object per connection, living across polls.
 *
 * A poll answers, as .NET's `LongPollingServerTransport`: 200 with every queued byte as soon as any is queued;
 * 200 with no body (text/plain) after the poll timeout; 204 when a newer poll supersedes it or the connection ends.
 * Between polls the connection is inactive and the disconnect timeout runs.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply } from 'fastify';
import type { HttpConnection, TransportSink } from '../connections/http-connection';
import { releaseIdleSocket, ResponseProgress } from './stalled-responses';

/**
 * Cache headers on every poll response
 * (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L180-L185, L827-L832).
 */
const NO_CACHE = {
  'cache-control': 'no-cache, no-store',
  pragma: 'no-cache',
  expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
} as const;

interface PendingPoll {
  readonly reply: FastifyReply;
  readonly timer: NodeJS.Timeout;
  readonly done: () => void;
}

/** Sends a poll response with the cache headers. */
function answer(reply: FastifyReply, status: number, contentType: string, body?: Buffer): void {
  if (reply.sent || reply.raw.destroyed) return;
  reply.code(status).headers(NO_CACHE).header('content-type', contentType);
  // Fastify drops the content type of a 204 sent with a payload, even an empty one; .NET keeps `text/plain` on it,
  // so a 204 is sent without a payload.
  void reply.send(status === 204 ? undefined : (body ?? Buffer.alloc(0)));
}

/** The long-polling side of one connection. */
export class LongPollingTransport implements TransportSink {
  private poll: PendingPoll | null = null;
  /** The last poll answered with data, until it is sent: a client that does not read it has it aborted. */
  private sending: ServerResponse | null = null;
  private readonly progress: ResponseProgress;
  /** The socket of the latest poll, closed when the connection expires. */
  private socket: Socket | null = null;
  /** What that socket had read when the latest poll arrived on it: more means another request used it since. */
  private socketBytesRead = 0;

  /**
   * @param sendTimeoutMs a poll response none of whose unsent bytes go out for this long is aborted; once the
   *   connection is over, its last socket is closed and cut after this grace
   */
  constructor(
    private readonly connection: HttpConnection,
    private readonly pollTimeoutMs: number,
    private readonly sendTimeoutMs: number,
  ) {
    this.progress = new ResponseProgress(sendTimeoutMs);
  }

  checkProgress(now: number): void {
    const response = this.sending;
    if (response === null) return;
    if (response.destroyed || (response.writableFinished && (response.socket?.writableLength ?? 0) === 0))
      this.sending = null;
    else this.progress.check(response, now);
  }

  connectionClosed(): void {
    // Only a connection that expired — its client stopped polling, perhaps stopped reading — gives its socket up:
    // after a DELETE or a Close the client may well reuse the keep-alive socket for its next request.
    // A socket that carried a request since then is not this client's any more: behind a balancer one keep-alive
    // socket serves many clients, and cutting it would fail another client's request.
    const socket = this.socket;
    if (this.connection.expired && socket !== null && socket.bytesRead === this.socketBytesRead) {
      releaseIdleSocket(socket, this.sendTimeoutMs);
    }
    this.socket = null;
    this.sending = null;
  }

  /** Answers a poll with data, watching that the client takes it. */
  private deliver(reply: FastifyReply, data: Buffer): void {
    this.sending = reply.raw;
    this.progress.check(reply.raw, Date.now());
    answer(reply, 200, 'application/octet-stream', data);
  }

  /**
   * The first poll of a connection: answered at once with 200, no body, which tells the client the transport is
   * up (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionContext.cs@v10.0.0 L456-L475).
   */
  start(reply: FastifyReply, now: number): void {
    this.connection.attachSink(this);
    answer(reply, 200, 'application/octet-stream');
    this.connection.markInactive(now);
  }

  /** Any later poll; resolves when its response has been sent. */
  handlePoll(reply: FastifyReply): Promise<void> {
    const connection = this.connection;
    this.socket = reply.raw.socket;
    this.socketBytesRead = reply.raw.socket?.bytesRead ?? 0;
    // A newer poll supersedes a pending one.
    this.endPoll(204);
    const data = connection.takeOutbound();
    if (data !== null) {
      this.deliver(reply, data);
      connection.markInactive(Date.now());
      return Promise.resolve();
    }
    if (connection.closing) {
      // Nothing left to deliver: this poll tells the client the connection is over.
      answer(reply, 204, 'text/plain');
      connection.transportClosed();
      return Promise.resolve();
    }
    connection.markActive();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        if (this.poll?.reply !== reply) return;
        this.poll = null;
        answer(reply, 200, 'text/plain');
        connection.markInactive(Date.now());
        resolve();
      }, this.pollTimeoutMs);
      this.poll = { reply, timer, done: resolve };
      // The client gave up on this poll (it stops, or its own timeout fired): the connection goes inactive.
      reply.raw.once('close', () => {
        if (this.poll?.reply !== reply) return;
        this.endPoll(204);
      });
    });
  }

  onOutbound(): void {
    const poll = this.poll;
    if (poll === null) return;
    const data = this.connection.takeOutbound();
    if (data === null) return;
    this.poll = null;
    clearTimeout(poll.timer);
    this.deliver(poll.reply, data);
    this.connection.markInactive(Date.now());
    poll.done();
  }

  /**
   * The server ends the connection: a pending poll takes what is queued (or learns the end with 204); without one,
   * the next poll does.
   */
  close(): void {
    if (this.poll === null) return;
    if (this.connection.bufferedOutbound > 0) {
      this.onOutbound();
      return;
    }
    this.endPoll(204);
    this.connection.transportClosed();
  }

  /** `DELETE` from the client: the pending poll ends with 204 and the connection is gone. */
  terminate(): void {
    this.endPoll(204);
    this.connection.transportClosed();
  }

  private endPoll(status: number): void {
    const poll = this.poll;
    if (poll === null) return;
    this.poll = null;
    clearTimeout(poll.timer);
    answer(poll.reply, status, 'text/plain');
    this.connection.markInactive(Date.now());
    poll.done();
  }
}
