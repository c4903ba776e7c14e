/**
 * The runner: executes one scenario's steps against one server and records what it observed.
 *
 * Nothing here asserts. A step whose expectation is not met (a message that never comes, a socket that does not
 * close) is recorded as such and the scenario goes on, so the comparison of the two servers' observations shows
 * the whole difference, not just the first symptom. Only a broken scenario (an unknown `{{name}}`, a step on a
 * socket that was never opened) throws.
 *
 * What a step observes is listed on its type in `scenario.ts`. Hub messages are the byte stream of a channel split
 * at 0x1E — WebSocket frame boundaries carry no meaning (docs/protocol.md §1.5) — each observed once, by the first step
 * that reads past it.
 */
import WebSocket from 'ws';
import { RawWebSocket, type RefusedUpgradeError } from '../../support/raw-websocket';
import { Normaliser } from './normalise';
import { OfficialClient } from './official-client';
import type {
  AwaitHttpStep,
  ClientCallStep,
  ClientClosedStep,
  ClientEventsStep,
  ClientStartStep,
  ClosedStep,
  HttpStep,
  ListenStep,
  NegotiateStep,
  ObservationEntry,
  Observation,
  OpenStep,
  Payload,
  ReceiveStep,
  Scenario,
  SendStep,
  SseStep,
  Step,
} from './scenario';
import type { Target } from './servers';

const RECORD_SEPARATOR = 0x1e;
/** Default name of a socket or SSE channel when a step names none. */
const DEFAULT_CHANNEL = 'ws';
const DEFAULT_RECEIVE_TIMEOUT_MS = 3_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** Default name of an official client when a step names none. */
const DEFAULT_CLIENT = 'client';
/**
 * How long an official client's call, events or close may take. Generous: our server shares its process with the
 * clients and the runner, so on a busy machine a long-polling round trip or two can take seconds; a call that never
 * settles is still reported.
 */
const DEFAULT_CLIENT_TIMEOUT_MS = 10_000;
/** How often waits re-check their condition. */
const POLL_MS = 5;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Bytes that arrived on a channel in one piece (a WebSocket frame, a chunk of an SSE event's data). */
interface Arrival {
  readonly data: Buffer;
  readonly binary: boolean;
}

/** A split hub message and the kind of frame its last byte arrived in. */
interface SplitMessage {
  readonly text: string;
  readonly binary: boolean;
}

/**
 * A stream of hub messages from the server: a WebSocket, or the data of a Server-Sent Events stream. Knows which
 * messages steps have observed already.
 */
class Channel {
  /** Raw text of an SSE stream (event framing included), for `rawPrefix`. */
  rawText = '';
  /** The WebSocket close code, or why the channel never opened. */
  closeCode: number | string | undefined;
  closed = false;
  /** Messages observed by earlier steps. */
  observed = 0;

  constructor(
    /** A WebSocket, a Server-Sent Events stream, or a socket or stream the server refused (closed from the start). */
    readonly kind: 'websocket' | 'events' | 'refused',
    readonly protocol: 'json' | 'messagepack',
    /** What arrived, in order: for a WebSocket the socket's own frame list, which it fills from its first frame. */
    readonly arrivals: Arrival[],
    readonly socket: RawWebSocket | null = null,
    readonly abort: (() => void) | null = null,
  ) {
    if (kind === 'refused') {
      this.closed = true;
      this.closeCode = '(never opened)';
    }
  }

  /** Every complete message so far, and the bytes of an unfinished one. */
  split(): { messages: SplitMessage[]; incomplete: Buffer } {
    const messages: SplitMessage[] = [];
    const parts: Buffer[] = [];
    const binaryAt: boolean[] = [];
    for (const arrival of this.arrivals) {
      parts.push(arrival.data);
      for (let i = 0; i < arrival.data.length; i++) binaryAt.push(arrival.binary);
    }
    const bytes = Buffer.concat(parts);
    let start = 0;
    // The handshake answer is JSON + 0x1E for every protocol (docs/protocol.md §2.1); MessagePack messages follow it.
    let handshakeDone = false;
    while (start < bytes.length) {
      if (this.protocol === 'messagepack' && handshakeDone) {
        const prefix = readVarInt(bytes, start);
        if (prefix === null || prefix.end + prefix.length > bytes.length) break;
        const end = prefix.end + prefix.length;
        messages.push({
          text: `msgpack:${bytes.subarray(prefix.end, end).toString('hex')}`,
          binary: binaryAt[end - 1],
        });
        start = end;
        continue;
      }
      const end = bytes.indexOf(RECORD_SEPARATOR, start);
      if (end === -1) break;
      messages.push({ text: bytes.subarray(start, end).toString('utf8'), binary: binaryAt[end] });
      start = end + 1;
      handshakeDone = true;
    }
    return { messages, incomplete: bytes.subarray(start) };
  }

  /** Messages not observed yet. */
  unobserved(): SplitMessage[] {
    return this.split().messages.slice(this.observed);
  }
}

/** A MessagePack length prefix (docs/protocol.md §2.1): value and where the body starts, or `null` if incomplete. */
function readVarInt(bytes: Buffer, start: number): { length: number; end: number } | null {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    if (start + i >= bytes.length) return null;
    const byte = bytes[start + i];
    length |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) === 0) return { length, end: start + i + 1 };
  }
  return null;
}

/** `text`, `binary`, or the frame type of each message when they differ. */
function frameTypes(messages: readonly SplitMessage[]): string | string[] | undefined {
  if (messages.length === 0) return undefined;
  const types = messages.map((message) => (message.binary ? 'binary' : 'text'));
  return types.every((type) => type === types[0]) ? types[0] : types;
}

/** An HTTP request started by a `background` step. */
interface Pending {
  readonly response: Promise<Response>;
  /** The headers the step asked to observe. */
  readonly observe: readonly string[] | undefined;
  readonly startedAt: number;
  readonly abort: AbortController;
}

/** The state of one scenario run against one server. */
class Run {
  private readonly entries: ObservationEntry[] = [];
  private readonly variables = new Map<string, string>();
  private readonly channels = new Map<string, Channel>();
  private readonly pending = new Map<string, Pending>();
  private readonly clients = new Map<string, OfficialClient>();
  private readonly normaliser = new Normaliser();
  /** When the previous step ended: the reference point of `withinMs` bounds. */
  private stepEndedAt = Date.now();

  constructor(private readonly target: Target) {
    // The server's own origin, e.g. for a same-origin `origin` header; it never appears in what is observed.
    this.variables.set('server', new URL(target.hubUrl).origin);
  }

  async execute(steps: readonly Step[]): Promise<Observation> {
    try {
      for (const step of steps) {
        await this.step(step);
        this.stepEndedAt = Date.now();
      }
    } finally {
      await this.cleanUp();
    }
    return this.entries.map((entry) => this.normaliser.value(entry));
  }

  private record(entry: ObservationEntry): void {
    this.entries.push(entry);
  }

  private async step(step: Step): Promise<void> {
    if ('http' in step) return this.http(step);
    if ('awaitHttp' in step) return this.awaitHttp(step);
    if ('negotiate' in step) return this.negotiate(step);
    if ('open' in step) return this.open(step);
    if ('send' in step) return this.send(step);
    if ('receive' in step) return this.receive(step);
    if ('listen' in step) return this.listen(step);
    if ('closed' in step) return this.waitClosed(step);
    if ('close' in step) return this.close(step.close === true ? 1000 : step.close, step.socket);
    if ('wait' in step) return sleep(step.wait);
    if ('sse' in step) return this.sse(step);
    if ('start' in step) return this.startClient(step);
    if ('call' in step) return this.call(step);
    if ('events' in step) return this.events(step);
    if ('requests' in step)
      return this.record({ requests: step.requests, made: this.client(step.requests).requestSummary() });
    if ('stop' in step) return this.stopClient(step.stop);
    if ('clientClosed' in step) return this.clientClosed(step);
    throw new Error(`unknown step ${JSON.stringify(step)}`);
  }

  // -- values -----------------------------------------------------------------------------------------------

  /** Replaces `{{name}}` by saved values. */
  private substitute(text: string): string {
    return text.replace(/\{\{([\w.-]+)\}\}/g, (_match, name: string) => {
      const value = this.variables.get(name);
      if (value === undefined) throw new Error(`scenario uses {{${name}}} before a step saved it`);
      return value;
    });
  }

  private payload(payload: Payload): Buffer | string {
    return typeof payload === 'string' ? this.substitute(payload) : payload;
  }

  /** Request headers with saved values filled in. */
  private headers(headers: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
    if (headers === undefined) return undefined;
    return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, this.substitute(value)]));
  }

  /** `{{name}}` replaced in every string of a JSON-like value (arguments of an official client's call). */
  private substituteValue(value: unknown): unknown {
    if (typeof value === 'string') return this.substitute(value);
    if (Array.isArray(value)) return value.map((item: unknown) => this.substituteValue(item));
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.substituteValue(item)]));
    }
    return value;
  }

  private save(name: string, value: unknown): void {
    if (typeof value !== 'string') return;
    this.variables.set(name, value);
    this.normaliser.remember(value, name);
  }

  // -- HTTP -------------------------------------------------------------------------------------------------

  private request(step: HttpStep, signal?: AbortSignal): Promise<Response> {
    const payload = step.body === undefined ? undefined : this.payload(step.body);
    const body = typeof payload === 'string' || payload === undefined ? payload : new Uint8Array(payload);
    const base = step.root === true ? new URL(this.target.hubUrl).origin : this.target.hubUrl;
    return fetch(base + this.substitute(step.path), {
      method: step.http,
      headers: this.headers(step.headers),
      body,
      redirect: 'manual',
      signal,
    });
  }

  /** Status, content type, listed headers and body of a response. */
  private async describe(
    label: string,
    response: Response,
    observe: readonly string[] = [],
  ): Promise<Record<string, unknown>> {
    const entry: Record<string, unknown> = { request: label, status: response.status };
    entry['content-type'] = response.headers.get('content-type') ?? '(none)';
    for (const name of observe) entry[name] = response.headers.get(name) ?? '(none)';
    entry.body = await response.text();
    return entry;
  }

  private async http(step: HttpStep): Promise<void> {
    const label = `${step.http} ${step.path}`;
    if (step.background !== undefined) {
      const abort = new AbortController();
      const response = this.request(step, abort.signal);
      // Observed by awaitHttp; a failure must not surface as an unhandled rejection before that.
      response.catch(() => undefined);
      this.pending.set(step.background, { response, observe: step.observe, startedAt: Date.now(), abort });
      return;
    }
    const response = await this.request(step);
    const entry = await this.describe(label, response, step.observe);
    if (step.save !== undefined) this.saveFromBody(entry.body as string, step.save);
    this.record(entry);
  }

  private saveFromBody(body: string, save: Readonly<Record<string, string>>): void {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return;
    }
    for (const [name, property] of Object.entries(save)) this.save(name, json[property]);
  }

  /** Saves properties of a received JSON message; not registered for normalisation (see `ReceiveStep.save`). */
  private saveFromMessage(text: string, save: Readonly<Record<string, string>>): void {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    for (const [name, property] of Object.entries(save)) {
      const value = json[property];
      if (typeof value === 'string') this.variables.set(name, value);
    }
  }

  private async awaitHttp(step: AwaitHttpStep): Promise<void> {
    const pending = this.pending.get(step.awaitHttp);
    if (pending === undefined) throw new Error(`no background request named ${step.awaitHttp}`);
    this.pending.delete(step.awaitHttp);
    let entry: Record<string, unknown>;
    try {
      entry = await this.describe(step.awaitHttp, await pending.response, pending.observe);
    } catch (error) {
      entry = { request: step.awaitHttp, failed: (error as Error).message };
    }
    if (step.withinMs !== undefined) entry.timing = timing(Date.now() - pending.startedAt, step.withinMs);
    this.record(entry);
  }

  private async negotiate(step: NegotiateStep): Promise<void> {
    const prefix = step.as === undefined ? '' : `${step.as}.`;
    await this.http({
      http: 'POST',
      path: `/negotiate${step.negotiate}`,
      save: { [`${prefix}id`]: 'connectionId', [`${prefix}token`]: 'connectionToken' },
    });
  }

  // -- WebSockets -------------------------------------------------------------------------------------------

  private channel(name = DEFAULT_CHANNEL): Channel {
    const channel = this.channels.get(name);
    if (channel === undefined) throw new Error(`scenario uses socket '${name}' before opening it`);
    return channel;
  }

  /** The observation entry of a step, naming its socket when the scenario chose one. */
  private labelled(socket: string | undefined, fields: Record<string, unknown>): Record<string, unknown> {
    return socket === undefined ? fields : { socket, ...fields };
  }

  private async open(step: OpenStep): Promise<void> {
    const name = step.socket ?? DEFAULT_CHANNEL;
    if (this.channels.has(name)) throw new Error(`socket '${name}' is opened twice`);
    let socket: RawWebSocket;
    try {
      socket = await RawWebSocket.connect(this.target.hubUrl + this.substitute(step.open), this.headers(step.headers));
    } catch (error) {
      const refused = error as Partial<RefusedUpgradeError>;
      if (refused.status === undefined) throw error;
      const contentType = refused.headers?.['content-type'];
      this.record(
        this.labelled(step.socket, {
          open: step.open,
          refused: refused.status,
          'content-type': typeof contentType === 'string' ? contentType : '(none)',
          body: refused.body,
        }),
      );
      // Later steps on this socket record that it never opened, so both servers' observations stay comparable.
      this.channels.set(name, new Channel('refused', step.protocol ?? 'json', []));
      return;
    }
    const channel = new Channel('websocket', step.protocol ?? 'json', socket.frames, socket);
    void socket.closed.then(({ code }) => {
      channel.closed = true;
      channel.closeCode = code;
    });
    this.channels.set(name, channel);
    this.record(this.labelled(step.socket, { open: step.open, accepted: true }));
  }

  private send(step: SendStep): void {
    const channel = this.channel(step.socket);
    if (channel.kind === 'events') throw new Error(`'${step.socket ?? DEFAULT_CHANNEL}' is not a WebSocket`);
    const socket = channel.socket;
    if (socket === null || socket.socket.readyState !== WebSocket.OPEN) {
      // Recorded, not thrown: a server that closed earlier than the other shows up in the comparison.
      this.record(this.labelled(step.socket, { notSent: 'the socket is closed' }));
      return;
    }
    const data = this.payload(step.send);
    const binary = step.frame === undefined ? typeof data !== 'string' : step.frame === 'binary';
    socket.socket.send(data, { binary, fin: step.fragment !== true });
  }

  private close(code: number | 'drop' | 'no status', name?: string): void {
    const channel = this.channel(name);
    if (channel.kind === 'events') {
      // The client goes away: its EventSource request is aborted.
      channel.abort?.();
      return;
    }
    if (channel.socket?.socket.readyState !== WebSocket.OPEN) return;
    if (code === 'drop') channel.socket.socket.terminate();
    else if (code === 'no status') channel.socket.socket.close();
    else channel.socket.socket.close(code);
  }

  // -- observing messages -----------------------------------------------------------------------------------

  private async receive(step: ReceiveStep): Promise<void> {
    const channel = this.channel(step.socket);
    const deadline = Date.now() + (step.timeoutMs ?? DEFAULT_RECEIVE_TIMEOUT_MS);
    let messages = channel.unobserved();
    while (messages.length < step.receive && !channel.closed && Date.now() < deadline) {
      await sleep(POLL_MS);
      messages = channel.unobserved();
    }
    // The socket emits its last frames before its close, so a re-read after the close sees all of them.
    if (messages.length < step.receive && channel.closed) messages = channel.unobserved();
    const taken = messages.slice(0, step.receive);
    channel.observed += taken.length;
    if (step.save !== undefined && taken.length > 0) this.saveFromMessage(taken[taken.length - 1].text, step.save);
    const entry = this.labelled(step.socket, { receive: step.receive, messages: taken.map((m) => m.text) });
    const frames = frameTypes(taken);
    if (frames !== undefined) entry.frames = frames;
    if (taken.length < step.receive) {
      if (channel.closed) entry.closedFirst = channel.closeCode;
      else entry.timedOut = true;
    }
    this.record(entry);
  }

  private async listen(step: ListenStep): Promise<void> {
    const channel = this.channel(step.socket);
    await sleep(step.listen);
    const messages = channel.unobserved();
    channel.observed += messages.length;
    const entry = this.labelled(step.socket, { listen: step.listen });
    const rule = step.count;
    if (rule === undefined) {
      entry.messages = messages.map((m) => m.text);
    } else {
      const count = messages.filter((m) => m.text === rule.message).length;
      const range = Object.entries(rule.ranges).find(([, [low, high]]) => count >= low && count <= high);
      entry[rule.message] = range === undefined ? `${count} (in no named range)` : range[0];
      entry.messages = messages.filter((m) => m.text !== rule.message).map((m) => m.text);
    }
    const frames = frameTypes(messages);
    if (frames !== undefined) entry.frames = frames;
    if (channel.closed) entry.closed = channel.closeCode;
    this.record(entry);
  }

  private async waitClosed(step: ClosedStep): Promise<void> {
    const channel = this.channel(step.socket);
    const deadline = Date.now() + (step.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    while (!channel.closed && Date.now() < deadline) await sleep(POLL_MS);
    const elapsed = Date.now() - this.stepEndedAt;
    const { messages, incomplete } = channel.split();
    const rest = messages.slice(channel.observed);
    channel.observed = messages.length;
    const entry = this.labelled(step.socket, {
      closed: channel.closed
        ? (channel.closeCode ?? '(no code)')
        : `still open after ${step.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS} ms`,
      messages: rest.map((m) => m.text),
    });
    const frames = frameTypes(rest);
    if (frames !== undefined) entry.frames = frames;
    if (incomplete.length > 0) entry.incomplete = incomplete.toString('utf8');
    if (step.withinMs !== undefined && channel.closed) entry.timing = timing(elapsed, step.withinMs);
    this.record(entry);
  }

  // -- Server-Sent Events -----------------------------------------------------------------------------------

  private async sse(step: SseStep): Promise<void> {
    const name = step.socket ?? DEFAULT_CHANNEL;
    if (this.channels.has(name)) throw new Error(`channel '${name}' is opened twice`);
    const abort = new AbortController();
    const response = await fetch(this.target.hubUrl + this.substitute(step.sse), {
      headers: { ...this.headers(step.headers), accept: 'text/event-stream' },
      signal: abort.signal,
    });
    const entry = this.labelled(step.socket, { sse: step.sse, status: response.status });
    entry['content-type'] = response.headers.get('content-type') ?? '(none)';
    for (const header of step.observe ?? []) entry[header] = response.headers.get(header) ?? '(none)';
    if (response.status !== 200 || response.body === null) {
      entry.body = await response.text();
      this.channels.set(name, new Channel('refused', 'json', []));
      this.record(entry);
      return;
    }
    const channel = new Channel('events', 'json', [], null, () => abort.abort());
    this.channels.set(name, channel);
    void readEvents(response.body, channel);
    if (step.rawPrefix !== undefined) {
      const deadline = Date.now() + DEFAULT_RECEIVE_TIMEOUT_MS;
      while (channel.rawText.length < step.rawPrefix && !channel.closed && Date.now() < deadline) await sleep(POLL_MS);
      entry.rawPrefix = channel.rawText.slice(0, step.rawPrefix);
    }
    this.record(entry);
  }

  // -- the official client ----------------------------------------------------------------------------------

  private client(name: string): OfficialClient {
    const client = this.clients.get(name);
    if (client === undefined) throw new Error(`scenario uses client '${name}' before starting it`);
    return client;
  }

  private async startClient(step: ClientStartStep): Promise<void> {
    const name = step.client ?? DEFAULT_CLIENT;
    if (this.clients.has(name)) throw new Error(`client '${name}' is started twice`);
    const entry: Record<string, unknown> = { start: step.start };
    if (step.client !== undefined) entry.client = step.client;
    try {
      const client = await OfficialClient.start({
        transport: step.start,
        url: step.query === undefined ? this.target.hubUrl : `${this.target.hubUrl}?${this.substitute(step.query)}`,
        skipNegotiation: step.skipNegotiation,
        statefulReconnect: step.statefulReconnect,
        messagePack: this.target.clientProtocol === 'messagepack',
        answer: step.answer,
        onToken: (token) => this.normaliser.remember(token, `${name}.token`),
      });
      this.clients.set(name, client);
      const id = client.connection.connectionId;
      this.save(`${name}.id`, id);
      entry.connectionId = id ?? '(none)';
    } catch (error) {
      entry.failed = (error as Error).message;
    }
    this.record(entry);
  }

  private async call(step: ClientCallStep): Promise<void> {
    const kind = step.kind ?? 'invoke';
    const args = (step.args ?? []).map((arg) => this.substituteValue(arg));
    const outcome = await this.client(step.client ?? DEFAULT_CLIENT).call(
      kind,
      step.call,
      args,
      step.upload,
      step.take,
      step.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS,
    );
    const entry: Record<string, unknown> = { call: step.call };
    if (kind !== 'invoke') entry.kind = kind;
    if (step.client !== undefined) entry.client = step.client;
    this.record({ ...entry, ...outcome });
  }

  private async events(step: ClientEventsStep): Promise<void> {
    const client = this.client(step.client ?? DEFAULT_CLIENT);
    const { received, timedOut } = await client.takeEvents(step.events, step.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS);
    const entry: Record<string, unknown> = { events: step.events, received };
    if (step.client !== undefined) entry.client = step.client;
    if (timedOut) entry.timedOut = true;
    this.record(entry);
  }

  private async stopClient(name: string): Promise<void> {
    const error = await this.client(name).stop();
    this.record({ stop: name, closeError: error?.message ?? '(none)' });
  }

  private async clientClosed(step: ClientClosedStep): Promise<void> {
    const timeoutMs = step.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    const error = await this.client(step.clientClosed).closed(timeoutMs);
    const outcome = error === null ? `still open after ${timeoutMs} ms` : (error?.message ?? '(none)');
    this.record({ clientClosed: step.clientClosed, error: outcome });
  }

  // -- the end ----------------------------------------------------------------------------------------------

  private async cleanUp(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.stop().catch(() => undefined)));
    for (const channel of this.channels.values()) {
      channel.socket?.close();
      channel.abort?.();
    }
    for (const pending of this.pending.values()) {
      pending.abort.abort();
      // A response that already arrived keeps its connection busy until its body is consumed or cancelled.
      void pending.response.then((response) => response.body?.cancel()).catch(() => undefined);
    }
  }
}

/**
 * Reads an SSE stream into a channel: the data of each event (its `data:` lines joined by `\n`) is appended to the
 * channel's byte stream, where the hub messages are split as on a WebSocket.
 */
async function readEvents(body: ReadableStream<Uint8Array>, channel: Channel): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      channel.rawText += text;
      buffer += text;
      for (let end = buffer.indexOf('\r\n\r\n'); end !== -1; end = buffer.indexOf('\r\n\r\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 4);
        const data = event
          .split('\r\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data !== '') channel.arrivals.push({ data: Buffer.from(data, 'utf8'), binary: false });
      }
    }
  } catch {
    // Aborted at the end of the scenario, or the server dropped the stream: either way the stream is over.
  }
  channel.closeCode = '(stream ended)';
  channel.closed = true;
}

/** Whether `elapsed` lies within `[low, high]` ms, worded so equal behaviour gives equal text. */
function timing(elapsed: number, [low, high]: readonly [number, number]): string {
  return elapsed >= low && elapsed <= high
    ? `within ${low}–${high} ms`
    : `after ${elapsed} ms, outside ${low}–${high} ms`;
}

/**
 * Runs a scenario against one server.
 * @returns what the server did, normalised (random ids and dates replaced by placeholders)
 */
export function runScenario(target: Target, scenario: Scenario): Promise<Observation> {
  return new Run(target).execute(scenario.steps);
}
