/**
 * The Server-Sent Events transport (docs/protocol.md §1.6): server-to-client messages on one long `text/event-stream`
 * response, each event holding everything queued during one event-loop turn; client-to-server messages arrive by
 * POST. Text only: the handshake refuses binary protocols on it.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import { SSE_PREAMBLE, formatServerSentEvent } from '../../protocol/server-sent-events';
import type { HttpConnection, TransportSink } from '../connections/http-connection';
import { cutIfStillOpen, ResponseProgress } from './stalled-responses';

/**
 * The headers .NET sends on the stream
 * (src/SignalR/common/Http.Connections/src/Internal/Transports/ServerSentEventsServerTransport.cs@v10.0.0 L33-L41).
 */
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache,no-store',
  pragma: 'no-cache',
  'content-encoding': 'identity',
  // Tells reverse proxies such as nginx not to buffer the stream.
  'x-accel-buffering': 'no',
} as const;

class ServerSentEventsSink implements TransportSink {
  private readonly progress: ResponseProgress;

  constructor(
    private readonly reply: FastifyReply,
    private readonly connection: HttpConnection,
    private readonly sendTimeoutMs: number,
  ) {
    this.progress = new ResponseProgress(sendTimeoutMs);
  }

  get bufferedAmount(): number {
    return this.reply.raw.writableLength;
  }

  onOutbound(): void {
    const data = this.connection.takeOutbound();
    if (data === null || this.reply.raw.writableEnded) return;
    this.reply.raw.write(formatServerSentEvent(data));
  }

  close(): void {
    this.onOutbound();
    const response = this.reply.raw;
    if (!response.writableEnded) response.end();
    // A client that stopped reading never takes the end of the stream; its socket goes after the grace.
    cutIfStillOpen(response.socket, this.sendTimeoutMs);
  }

  checkProgress(now: number): void {
    // Aborting destroys the response; its 'close' then ends the connection.
    this.progress.check(this.reply.raw, now);
  }
}

/**
 * Takes over the response of a `GET` with `Accept: text/event-stream` and streams the connection's messages on it
 * until either side ends it.
 */
export function startServerSentEvents(reply: FastifyReply, connection: HttpConnection, sendTimeoutMs: number): void {
  reply.hijack();
  const response = reply.raw;
  // Headers hooks put on the reply (CORS, an auth plugin's) go out too: the raw response does not know them.
  // `Connection: close`: the socket carries this stream only, so once the stream ends it can be cut without
  // hurting a request the client would otherwise have sent on it next.
  response.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...SSE_HEADERS, connection: 'close' });
  response.socket?.setNoDelay(true);
  response.write(SSE_PREAMBLE);
  const sink = new ServerSentEventsSink(reply, connection, sendTimeoutMs);
  connection.markActive();
  connection.attachSink(sink);
  // The client went away, or the server ended the stream: the connection is over. (The request's own 'close'
  // fires as soon as its empty body is read, so only the response's tells.)
  response.once('close', () => connection.transportEnded(sink));
}
