/**
 * The live trace: hub messages of one connection, user or group as they pass, for the admin page.
 *
 * A hub's `HubStats.tracer` is set only while some trace of that hub is open, so the message path pays a null check
 * otherwise. While one is open, each message of the hub is matched against the open traces; a match is decoded
 * (outbound bytes are read back with the connection's protocol), its arguments cut to a bounded JSON text, and
 * queued for the page. Each trace passes at most `traceMessagesPerSecond` messages; the rest are only counted.
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import { MessageType, type HubMessage } from '../../protocol/messages';
import type { HubEndpoint } from '../hub/hub-endpoint';
import type { HubTracer, TracedConnection } from '../hub/hub-stats';

/** What a trace follows. */
export type TraceTargetKind = 'connection' | 'user' | 'group';

/** One traced hub message, as the page shows it. */
export interface TraceEntry {
  /** ms since the epoch. */
  readonly at: number;
  /** `in`: from the client; `out`: to the client. */
  readonly direction: 'in' | 'out';
  readonly connectionId: string;
  /** The message kind: `Invocation`, `Completion`, `StreamItem`, … */
  readonly type: string;
  readonly method?: string;
  readonly invocationId?: string;
  /** The arguments (or result, item, error) as JSON, cut to `traceArgumentCharacters`. */
  readonly args: string;
  /** Bytes of the message on the wire (outbound) or of its arguments as JSON (inbound). */
  readonly size: number;
  readonly truncated: boolean;
}

/** A batch of entries for one trace, sent to the page that opened it. */
export interface TraceBatch {
  readonly entries: readonly TraceEntry[];
  /** Messages that matched but were over the rate since the last batch. */
  readonly dropped: number;
}

const TYPE_NAMES: Record<number, string> = {
  [MessageType.Invocation]: 'Invocation',
  [MessageType.StreamItem]: 'StreamItem',
  [MessageType.Completion]: 'Completion',
  [MessageType.StreamInvocation]: 'StreamInvocation',
  [MessageType.CancelInvocation]: 'CancelInvocation',
  [MessageType.Ping]: 'Ping',
  [MessageType.Close]: 'Close',
  [MessageType.Ack]: 'Ack',
  [MessageType.Sequence]: 'Sequence',
};

/** One open trace. */
class TraceSession {
  private batch: TraceEntry[] = [];
  private dropped = 0;
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    readonly owner: string,
    readonly endpoint: HubEndpoint,
    readonly kind: TraceTargetKind,
    readonly target: string,
    private readonly perSecond: number,
  ) {}

  matches(connection: TracedConnection): boolean {
    if (this.kind === 'connection') return connection.connectionId === this.target;
    if (this.kind === 'user') return connection.userIdentifier === this.target;
    const lifetime = this.endpoint.lifetime as Partial<{ localGroupsOf(id: string): readonly string[] }>;
    return lifetime.localGroupsOf?.(connection.connectionId).includes(this.target) ?? false;
  }

  /** Whether one more entry fits in this second. */
  admit(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.dropped++;
      return false;
    }
    this.inWindow++;
    return true;
  }

  add(entry: TraceEntry): void {
    this.batch.push(entry);
  }

  take(): TraceBatch | undefined {
    if (this.batch.length === 0 && this.dropped === 0) return undefined;
    const batch = { entries: this.batch, dropped: this.dropped };
    this.batch = [];
    this.dropped = 0;
    return batch;
  }
}

/** Cuts a value to a bounded JSON text. */
export function describeArguments(value: unknown, limit: number): { text: string; size: number; truncated: boolean } {
  let text: string;
  try {
    text =
      JSON.stringify(value, (_key, item: unknown) => {
        if (typeof item === 'bigint') return `${item}n`;
        if (item instanceof Uint8Array) return `<${item.byteLength} bytes>`;
        return item;
      }) ?? 'undefined';
  } catch {
    text = '<not serializable>';
  }
  const size = Buffer.byteLength(text);
  return text.length > limit
    ? { text: `${text.slice(0, limit)}…`, size, truncated: true }
    : { text, size, truncated: false };
}

/** The open traces of every hub, and the tracers installed while any is open. */
export class AdminTraces {
  private readonly sessions = new Map<string, TraceSession>();
  private flushTimer: NodeJS.Timeout | null = null;

  /**
   * @param send delivers a batch to the page (the admin connection) that opened the trace
   */
  constructor(
    private readonly send: (owner: string, batch: TraceBatch) => void,
    private readonly limits: { readonly perSecond: number; readonly argumentCharacters: number },
  ) {}

  /** Opens (or replaces) the trace of the page connection `owner`. */
  open(owner: string, endpoint: HubEndpoint, kind: TraceTargetKind, target: string): void {
    this.close(owner);
    this.sessions.set(owner, new TraceSession(owner, endpoint, kind, target, this.limits.perSecond));
    this.install(endpoint);
    this.flushTimer ??= setInterval(() => this.flush(), 250);
    this.flushTimer.unref();
  }

  /** Stops the trace of `owner`, if it has one; the tracer leaves its hub with the hub's last trace. */
  close(owner: string): void {
    const session = this.sessions.get(owner);
    if (session === undefined) return;
    this.flush();
    this.sessions.delete(owner);
    const endpoint = session.endpoint;
    if (![...this.sessions.values()].some((other) => other.endpoint === endpoint)) endpoint.stats.tracer = null;
    if (this.sessions.size === 0 && this.flushTimer !== null) {
      clearInterval(this.flushTimer);
      this.flushTimer = null;
    }
  }

  /** Stops every trace. */
  closeAll(): void {
    for (const owner of [...this.sessions.keys()]) this.close(owner);
  }

  get openCount(): number {
    return this.sessions.size;
  }

  private install(endpoint: HubEndpoint): void {
    if (endpoint.stats.tracer !== null) return;
    const tracer: HubTracer = {
      inbound: (connection, message) => {
        if (message.type === MessageType.Ping) return;
        const sessions = this.admitted(endpoint, connection);
        if (sessions.length > 0) this.record(sessions, connection, 'in', message, undefined);
      },
      outbound: (connection, protocol, bytes) => {
        // Matched and within the rate before anything is decoded: a traced group's busy send costs a count.
        const sessions = this.admitted(endpoint, connection);
        if (sessions.length === 0) return;
        for (const message of decode(protocol, bytes)) {
          if (message.type !== MessageType.Ping) this.record(sessions, connection, 'out', message, bytes.byteLength);
        }
      },
    };
    endpoint.stats.tracer = tracer;
  }

  /** The traces of `endpoint` that follow `connection` and have room for one more message this second. */
  private admitted(endpoint: HubEndpoint, connection: TracedConnection): TraceSession[] {
    const now = Date.now();
    const sessions: TraceSession[] = [];
    for (const session of this.sessions.values()) {
      if (session.endpoint === endpoint && session.matches(connection) && session.admit(now)) sessions.push(session);
    }
    return sessions;
  }

  private record(
    sessions: readonly TraceSession[],
    connection: TracedConnection,
    direction: 'in' | 'out',
    message: HubMessage,
    wireSize: number | undefined,
  ): void {
    const described = describeArguments(payloadOf(message), this.limits.argumentCharacters);
    const entry: TraceEntry = {
      at: Date.now(),
      direction,
      connectionId: connection.connectionId,
      type: TYPE_NAMES[message.type] ?? String(message.type),
      ...('target' in message && { method: message.target }),
      ...('invocationId' in message && message.invocationId !== undefined && { invocationId: message.invocationId }),
      args: described.text,
      size: wireSize ?? described.size,
      truncated: described.truncated,
    };
    for (const session of sessions) session.add(entry);
  }

  private flush(): void {
    for (const session of this.sessions.values()) {
      const batch = session.take();
      if (batch !== undefined) this.send(session.owner, batch);
    }
  }
}

/** What of a message the trace shows as its arguments. */
function payloadOf(message: HubMessage): unknown {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return message.arguments;
    case MessageType.StreamItem:
      return message.item;
    case MessageType.Completion:
      return message.error !== undefined ? { error: message.error } : { result: message.result };
    case MessageType.Close:
      return message.error !== undefined ? { error: message.error } : {};
    default:
      return {};
  }
}

/** The messages framed in `bytes` (one, for what a connection writes), read back with its protocol. */
function decode(protocol: HubProtocol, bytes: Uint8Array): HubMessage[] {
  const messages: HubMessage[] = [];
  try {
    protocol.createReader({ maximumMessageSize: null }).push(bytes, (message) => messages.push(message));
  } catch {
    // What we wrote is always readable; a protocol of the application's that is not is simply not traced.
  }
  return messages;
}
