/**
 * Fastify logger settings for production: JSON lines (pino), and no secret in them. SignalR puts two secrets in
 * URLs — the `access_token` query parameter (browsers cannot set headers on WebSockets and Server-Sent Events) and
 * the connection token `id` (whoever has it can drive the connection) — so logged request URLs carry neither;
 * authorization and cookie headers are redacted wherever a request's headers are logged.
 *
 * Stable event names (the `event` field) let operators filter without parsing messages; they are catalogued, with
 * their levels and meanings, in `LOG_EVENTS` (src/shared/log-events.ts).
 */
import { write as writeToFd } from 'node:fs';
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { LOG_EVENTS, type LogEventName, type LogLevel } from '../shared/log-events';

/** Query parameters whose values never reach a log line, by name in lower case. */
const SECRET_QUERY_PARAMETERS = new Set(['access_token', 'id']);

/** A query parameter name as Fastify's parser reads it: `+` is a space, `%XX` escapes decoded. */
function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    // A malformed escape: Fastify's parser keeps such a name as written.
    return name.toLowerCase();
  }
}

/**
 * A request URL with its secret query values replaced by `[redacted]`. Names are compared as the query parser
 * decodes them, so `?access%5Ftoken=` and `?%69d=` (which the hub reads as `access_token` and `id`) are redacted too.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const hash = url.indexOf('#', start);
  const end = hash === -1 ? url.length : hash;
  const query = url
    .slice(start + 1, end)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals === -1) return pair;
      return SECRET_QUERY_PARAMETERS.has(decodedName(pair.slice(0, equals)))
        ? `${pair.slice(0, equals)}=[redacted]`
        : pair;
    })
    .join('&');
  return `${url.slice(0, start + 1)}${query}${url.slice(end)}`;
}

/**
 * A not-found handler for `app.setNotFoundHandler` that answers as Fastify's own — the same 404 body — but logs the
 * URL without its secrets: Fastify's default handler logs `Route GET:<url> not found` with the raw URL, tokens and
 * all.
 */
export function redactedNotFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const message = `Route ${request.method}:${redactUrl(request.url)} not found`;
  request.log.info(message);
  return reply.code(404).send({ message, error: 'Not Found', statusCode: 404 });
}

/** Header paths pino removes from anything logged. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

/** pino's numbers for the levels, for the line this destination writes itself. */
const PINO_LEVELS: Readonly<Record<LogLevel, number>> = { debug: 20, info: 30, warn: 40, error: 50 };

/** How long to wait before writing again when the log's reader is full (`EAGAIN`). */
const RETRY_FULL_MS = 20;

/**
 * Where the production logger writes: standard output (or any file descriptor), asynchronously and never blocking
 * the event loop or the process's exit on the reader.
 *
 * pino's own destination flushes synchronously when the process exits, and retries that flush for ever when the
 * reader is gone (`EPIPE`: a supervisor or log shipper that died): a shutdown then never ends. This one writes on
 * libuv's thread pool; a reader that is full is retried later, a reader that is gone ends logging (lines are
 * dropped and counted), and lines beyond `maximumQueuedBytes` are dropped rather than held in memory. Exit waits for
 * the queue only as long as `flushLogs` is told to.
 */
export class LogDestination {
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing = false;
  private broken = false;
  private droppedLines = 0;
  private readonly drained = new Set<() => void>();

  /**
   * @param fd the file descriptor written to
   * @param maximumQueuedBytes log bytes held while the reader is slower than the server; more lines are dropped
   */
  constructor(
    private readonly fd = 1,
    private readonly maximumQueuedBytes = 8 * 1024 * 1024,
  ) {
    destinations.add(this);
  }

  /** Lines dropped because the reader was gone or too slow. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Called by pino with one serialized line. */
  write(line: string): void {
    if (this.broken || this.queuedBytes >= this.maximumQueuedBytes) {
      this.droppedLines++;
      return;
    }
    if (this.droppedLines > 0 && this.queuedBytes === 0) this.enqueue(this.droppedNotice());
    this.enqueue(Buffer.from(line, 'utf8'));
    if (!this.writing) this.writeNext();
  }

  /** Resolves once every queued line is written, the reader is gone, or `timeoutMs` passed — whichever is first. */
  flush(timeoutMs: number): Promise<void> {
    if (this.queuedBytes === 0 || this.broken) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.drained.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.drained.add(done);
    });
  }

  private enqueue(chunk: Buffer): void {
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
  }

  /** One warning line saying how many lines were lost while the reader could not take them. */
  private droppedNotice(): Buffer {
    const count = this.droppedLines;
    this.droppedLines = 0;
    // Written past pino (the line reports on pino's own output), so it names its event and level itself.
    const event: LogEventName = 'signalr.log.dropped';
    const level = PINO_LEVELS[LOG_EVENTS[event].levels[0]];
    const notice = {
      level,
      time: Date.now(),
      event,
      dropped: count,
      msg: `${count} log line(s) dropped: the log's reader was too slow`,
    };
    return Buffer.from(`${JSON.stringify(notice)}\n`, 'utf8');
  }

  private writeNext(): void {
    if (this.queue.length === 0) {
      this.writing = false;
      for (const done of [...this.drained]) done();
      return;
    }
    this.writing = true;
    const chunk = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue, this.queuedBytes);
    this.queue.length = 0;
    this.queue.push(chunk);
    writeToFd(this.fd, chunk, 0, chunk.length, null, (error, written) => {
      if (error !== null) {
        if (error.code === 'EAGAIN') {
          setTimeout(() => this.writeNext(), RETRY_FULL_MS).unref();
          return;
        }
        // EPIPE, EBADF, ...: nobody reads this log any more; never try again.
        this.broken = true;
        this.droppedLines += this.queue.length;
        this.queue.length = 0;
        this.queuedBytes = 0;
        this.writeNext();
        return;
      }
      this.queuedBytes -= written;
      if (written < chunk.length) this.queue[0] = chunk.subarray(written);
      else this.queue.shift();
      this.writeNext();
    });
  }
}

const destinations = new Set<LogDestination>();

/**
 * Waits until every {@link LogDestination} has written what it holds, or `timeoutMs` passed: the graceful shutdown
 * calls it before the process exits, so the last lines usually get out and never hold the exit up.
 */
export async function flushLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...destinations].map((destination) => destination.flush(timeoutMs)));
}

/**
 * Logger options for `Fastify({ logger })`: the level, request URLs without secrets, secret headers redacted, and
 * lines written to standard output by a {@link LogDestination}, so neither a slow nor a vanished reader can stall
 * the server or its exit. Pair it with `disableRequestLogging` (or a `LogController`) on busy servers: long polling
 * makes a request every 90 s per client even when nothing happens.
 */
export function productionLoggerOptions(
  level: string,
  destination: LogDestination = new LogDestination(1),
): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level,
    stream: destination,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  };
}
