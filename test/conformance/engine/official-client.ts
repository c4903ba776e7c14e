/**
 * The official client inside a scenario: `@microsoft/signalr` (its Node build, unmodified) connected to one of the
 * two servers, with everything it saw recorded — results and errors of its calls, stream items, the client methods
 * the server invoked, why it closed, and the HTTP requests it made with the status each got.
 *
 * The recording sits where an application would see things (promise outcomes, handlers, `onclose`) plus an
 * `HttpClient` wrapped around the client's default one, which sees negotiate, long polls and sends; WebSocket and
 * EventSource traffic does not pass through it.
 */
import {
  DefaultHttpClient,
  HttpClient,
  HttpError,
  HttpTransportType,
  HubConnectionBuilder,
  LogLevel,
  NullLogger,
  Subject,
  type HttpRequest,
  type HttpResponse,
  type HubConnection,
  type ISubscription,
} from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import type { AnswerBehaviour, TransportName } from './scenario';

/** The client methods every official client in a scenario listens to (the chat hub's server-to-client calls). */
const OBSERVED_METHODS = ['ReceiveMessage', 'Values'];

/** How long no send may be on its way before a client is stopped; chained sends follow each other within it. */
const SENDS_QUIET_MS = 50;
const SENDS_SETTLE_TIMEOUT_MS = 3_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How to start an official client. */
export interface OfficialClientOptions {
  readonly transport: TransportName;
  /** The hub URL with any query string already added. */
  readonly url: string;
  readonly skipNegotiation?: boolean;
  readonly statefulReconnect?: boolean;
  /** Speaks MessagePack (`@microsoft/signalr-protocol-msgpack`) instead of JSON. */
  readonly messagePack?: boolean;
  readonly answer?: AnswerBehaviour;
  /** Called with the connection token the client received from negotiate, so it can be normalised. */
  readonly onToken: (token: string) => void;
}

/** The `HttpClient` the official client uses, wrapped to record `METHOD path → status` of every request. */
class RecordingHttpClient extends HttpClient {
  private readonly inner = new DefaultHttpClient(NullLogger.instance);
  /** POSTs (sends) on their way: the long poll is always pending, sends are what `stop()` must wait for. */
  sendsInFlight = 0;

  constructor(
    private readonly log: (line: string) => void,
    private readonly onToken: (token: string) => void,
  ) {
    super();
  }

  override async send(request: HttpRequest): Promise<HttpResponse> {
    const label = `${request.method ?? '?'} ${describeUrl(request.url ?? '')}`;
    const isSend = request.method === 'POST' && !label.includes('/negotiate');
    if (isSend) this.sendsInFlight++;
    try {
      const response = await this.inner.send(request);
      this.log(`${label} → ${response.statusCode}`);
      if (label.includes('/negotiate') && typeof response.content === 'string') this.rememberToken(response.content);
      return response;
    } catch (error) {
      // Non-2xx statuses arrive as HttpError; an aborted poll (the client stopping) as an AbortError.
      this.log(`${label} → ${error instanceof HttpError ? error.statusCode : (error as Error).name}`);
      throw error;
    } finally {
      if (isSend) this.sendsInFlight--;
    }
  }

  override getCookieString(url: string): string {
    return this.inner.getCookieString(url);
  }

  private rememberToken(content: string): void {
    try {
      const body = JSON.parse(content) as { connectionToken?: unknown; connectionId?: unknown };
      const token = body.connectionToken ?? body.connectionId;
      if (typeof token === 'string') this.onToken(token);
    } catch {
      // Not JSON: the client reports the failure itself.
    }
  }
}

/** Path and query of a request URL, with the cache-busting `_=<time>` of long polls removed. */
function describeUrl(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete('_');
  return parsed.pathname + parsed.search;
}

/** What one `stream` call saw. */
export interface StreamOutcome {
  readonly items: unknown[];
  /** `completed`, `disposed`, the error's message, or `still open` when it had not ended in time. */
  readonly end: string;
}

/** One started official client and what it saw. */
export class OfficialClient {
  /** `[method, ...args]` of every server-to-client call not observed yet. */
  readonly events: unknown[][] = [];
  /** `null` while open; then the error `onclose` reported (`undefined` for a clean close). */
  private closeError: Error | undefined | null = null;

  private constructor(
    readonly connection: HubConnection,
    /** `METHOD path → status` of every request the client made, in order. */
    private readonly requests: readonly string[],
    private readonly http: RecordingHttpClient,
  ) {}

  /** Builds and starts a client. Rejects with the client's own error when `start()` fails. */
  static async start(options: OfficialClientOptions): Promise<OfficialClient> {
    const requests: string[] = [];
    const http = new RecordingHttpClient((line) => requests.push(line), options.onToken);
    let builder = new HubConnectionBuilder()
      .withUrl(options.url, {
        transport: HttpTransportType[options.transport],
        skipNegotiation: options.skipNegotiation,
        httpClient: http,
      })
      .configureLogging(LogLevel.None);
    if (options.statefulReconnect) builder = builder.withStatefulReconnect();
    if (options.messagePack) builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const client = new OfficialClient(builder.build(), requests, http);
    for (const method of OBSERVED_METHODS) {
      client.connection.on(method, (...args: unknown[]) => client.events.push([method, ...args]));
    }
    const answer = options.answer;
    if (answer !== undefined) {
      client.connection.on('GetAnswer', (question: unknown) => {
        client.events.push(['GetAnswer', question]);
        if ('throws' in answer) throw new Error(answer.throws);
        return answer.returns;
      });
    }
    client.connection.onclose((error) => {
      client.closeError = error;
    });
    await client.connection.start();
    return client;
  }

  /** Every distinct `METHOD path → status` so far, sorted (how often and in which order polls ran is timing). */
  requestSummary(): string[] {
    return [...new Set(this.requests)].sort();
  }

  /** `invoke`, `send` or `stream` of `method`, with an upload `Subject` after `args` when `upload` is given. */
  async call(
    kind: 'invoke' | 'send' | 'stream',
    method: string,
    args: readonly unknown[],
    upload: { items: readonly unknown[]; error?: string } | undefined,
    take: number | undefined,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    const subject = upload === undefined ? undefined : new Subject<unknown>();
    const allArgs = subject === undefined ? [...args] : [...args, subject];
    if (kind === 'stream') return this.stream(method, allArgs, subject, upload, take, timeoutMs);
    const call =
      kind === 'invoke' ? this.connection.invoke(method, ...allArgs) : this.connection.send(method, ...allArgs);
    feed(subject, upload);
    const outcome = await settle(call, timeoutMs);
    if (kind === 'send' && 'result' in outcome) return { sent: true };
    return outcome;
  }

  private async stream(
    method: string,
    args: unknown[],
    subject: Subject<unknown> | undefined,
    upload: { items: readonly unknown[]; error?: string } | undefined,
    take: number | undefined,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    const items: unknown[] = [];
    let end: string | undefined;
    const subscription: ISubscription<unknown> = this.connection.stream(method, ...args).subscribe({
      next: (item) => {
        items.push(item);
        if (take !== undefined && items.length === take && end === undefined) {
          end = 'disposed';
          // Disposing sends a CancelInvocation; the client drops whatever the server still sends for the stream.
          // Deferred: items arrive after subscribe() returned, but this callback runs inside the client's dispatch.
          void Promise.resolve().then(() => subscription.dispose());
        }
      },
      error: (error: unknown) => {
        end ??= (error as Error).message;
      },
      complete: () => {
        end ??= 'completed';
      },
    });
    feed(subject, upload);
    const deadline = Date.now() + timeoutMs;
    while (end === undefined && Date.now() < deadline) await sleep(5);
    // After a cancel, nothing more may reach the subscriber.
    if (end === 'disposed') await sleep(200);
    return { items, end: end ?? 'still open' };
  }

  /** Waits until `count` server-to-client calls arrived (or `timeoutMs` passed) and takes them. */
  async takeEvents(count: number, timeoutMs: number): Promise<{ received: unknown[][]; timedOut: boolean }> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count && Date.now() < deadline) await sleep(5);
    const received = this.events.splice(0, count);
    return { received, timedOut: received.length < count };
  }

  /**
   * Stops the client once its sends are done; resolves with the error `onclose` reported (`undefined` for a clean
   * stop). The client sends the items of an upload one after another, and goes on after the server has already
   * answered the call (a refused stream): stopping under those sends makes them fail as unhandled rejections.
   */
  async stop(): Promise<Error | undefined> {
    const deadline = Date.now() + SENDS_SETTLE_TIMEOUT_MS;
    let quietSince = Date.now();
    while (Date.now() < deadline && Date.now() - quietSince < SENDS_QUIET_MS) {
      await sleep(5);
      if (this.http.sendsInFlight > 0) quietSince = Date.now();
    }
    await this.connection.stop();
    return this.closeError ?? undefined;
  }

  /** Waits for the server to end the connection; `null` when it has not within `timeoutMs`. */
  async closed(timeoutMs: number): Promise<Error | undefined | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeError === null && Date.now() < deadline) await sleep(5);
    return this.closeError;
  }
}

/** Sends the upload's items, then completes or errors the subject, as an application would after calling. */
function feed(
  subject: Subject<unknown> | undefined,
  upload: { items: readonly unknown[]; error?: string } | undefined,
): void {
  if (subject === undefined || upload === undefined) return;
  for (const item of upload.items) subject.next(item);
  if (upload.error === undefined) subject.complete();
  else subject.error(new Error(upload.error));
}

/** The outcome of a call as `{ result }` or `{ error }`, or `{ pending }` when it did not settle in time. */
async function settle(call: Promise<unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Record<string, unknown>>((resolve) => {
    timer = setTimeout(() => resolve({ pending: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    return await Promise.race([
      call.then(
        (result: unknown) => ({ result: result === undefined ? '(undefined)' : result }),
        (error: unknown) => ({ error: (error as Error).message }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
