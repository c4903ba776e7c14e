/**
 * Helpers for replaying the golden .NET backplane capture (`test/golden/dotnet-backplane.jsonl`, described in
 * `test/golden/CAPTURE.md`) against servers of ours: the capture's steps, the substitution of ids (connection ids,
 * server names, client-result invocation ids) in channel names and payload bytes, a raw Redis spy (PSUBSCRIBE *)
 * and a MONITOR reader, and the normal form of what a client received.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import Redis from 'ioredis';
import { findGoldenFile, loadGolden, mergeIds, type MessageLine, type SummaryLine } from '../protocol/helpers/golden';
import { ClientPool, eventually, type TestClient } from './clients';

/** A step summary with what the capture recorded about the hub call. */
export interface StepSummary extends SummaryLine {
  /** What each test client received during the step: `[method, ...args]` per invocation. */
  readonly delivered?: Record<string, unknown[][]>;
  readonly result?: unknown;
  readonly error?: string;
  readonly callMs?: number;
}

/** One step of the capture: the PUBLISHes it caused, and its summary. */
export interface GoldenStep {
  /** Line number of the summary (1-based), the step's key. */
  readonly line: number;
  readonly scenario: string;
  readonly note: string;
  readonly messages: readonly { readonly line: number; readonly value: MessageLine }[];
  readonly summary: StepSummary;
}

/** Every line of the capture. */
export const GOLDEN = loadGolden(findGoldenFile());
/** Placeholder → the capture's value (`jA` → `phljMCRMqX8Z5XV46P6Tbg`, `serverA` → `vm_…`). */
export const GOLDEN_IDS = mergeIds(GOLDEN);
/** The hub's backplane name in the capture. */
export const GOLDEN_HUB = 'WebAPI.ChatHub';

/** The capture's steps by summary line number. */
export const GOLDEN_STEPS: ReadonlyMap<number, GoldenStep> = (() => {
  const steps = new Map<number, GoldenStep>();
  let messages: { line: number; value: MessageLine }[] = [];
  for (const entry of GOLDEN) {
    if (entry.kind === 'message') messages.push({ line: entry.line, value: entry.value });
    if (entry.kind !== 'summary') continue;
    const summary = entry.value as StepSummary;
    for (const message of messages) {
      if (message.value.note !== summary.note)
        throw new Error(`golden line ${message.line} is not part of step ${entry.line}`);
    }
    steps.set(entry.line, { line: entry.line, scenario: summary.scenario, note: summary.note, messages, summary });
    messages = [];
  }
  return steps;
})();

/** The step whose summary is on `line`. */
export function goldenStep(line: number): GoldenStep {
  const step = GOLDEN_STEPS.get(line);
  if (step === undefined) throw new Error(`golden line ${line} is no step summary`);
  return step;
}

/** The MessagePack `str` of a string in its smallest form (fixstr, str8, str16), as MessagePack-CSharp writes it. */
export function msgpackStr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const n = bytes.length;
  const header =
    n < 32 ? Buffer.from([0xa0 | n]) : n < 256 ? Buffer.from([0xd9, n]) : Buffer.from([0xda, n >> 8, n & 0xff]);
  return Buffer.concat([header, bytes]);
}

/** Replaces every occurrence of `from` in `data` with `to`. */
export function replaceAll(data: Buffer, from: Buffer, to: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let at = data.indexOf(from); at !== -1; at = data.indexOf(from, start)) {
    parts.push(data.subarray(start, at), to);
    start = at + from.length;
  }
  if (start === 0) return data;
  parts.push(data.subarray(start));
  return Buffer.concat(parts);
}

/**
 * The capture's ids mapped to ours. Connection ids and invocation ids have the same length on both sides (22
 * characters), so their bytes are swapped in place, in channel names, envelopes and hub payloads alike. Server
 * names (`{machine}_{32 hex}`) may differ in length with the machine name; they occur only as envelope strings (a
 * group command's sender, a client-result invocation's return channel), so their whole MessagePack `str`, header
 * included, is swapped.
 */
export class IdMap {
  /** Placeholder → our value. */
  private readonly ours = new Map<string, string>();
  /** The capture's invocation id → ours. */
  private readonly invocationIds = new Map<string, string>();

  constructor(private readonly hub = GOLDEN_HUB) {}

  set(placeholder: string, value: string): void {
    if (!GOLDEN_IDS.has(placeholder)) throw new Error(`the capture has no id {${placeholder}}`);
    this.ours.set(placeholder, value);
  }

  get(placeholder: string): string {
    const value = this.ours.get(placeholder);
    if (value === undefined) throw new Error(`no id of ours for {${placeholder}}`);
    return value;
  }

  setInvocationId(golden: string, ours: string): void {
    if (golden.length !== ours.length) throw new Error(`invocation ids of different lengths: ${golden} / ${ours}`);
    this.invocationIds.set(golden, ours);
  }

  /** A channel template of the capture (`WebAPI.ChatHub:connection:{jB}`) with our ids. */
  channel(template: string): string {
    return template.replace(/\{([A-Za-z0-9]+)\}/g, (_, name: string) => this.get(name));
  }

  /** A value of the capture (a channel, an id) with our ids. */
  text(golden: string): string {
    let text = golden;
    for (const [placeholder, ours] of this.ours) text = text.split(GOLDEN_IDS.get(placeholder)!).join(ours);
    for (const [golden, ours] of this.invocationIds) text = text.split(golden).join(ours);
    return text;
  }

  /** The capture's payload bytes with our ids. */
  bytes(hex: string): Buffer {
    let data: Buffer = Buffer.from(hex, 'hex');
    for (const [placeholder, ours] of this.ours) {
      const golden = GOLDEN_IDS.get(placeholder)!;
      if (placeholder.startsWith('server')) {
        const returnName = (server: string) => `${this.hub}:internal:return:${server}`;
        data = replaceAll(data, msgpackStr(returnName(golden)), msgpackStr(returnName(ours)));
        data = replaceAll(data, msgpackStr(golden), msgpackStr(ours));
      } else {
        if (golden.length !== ours.length) throw new Error(`{${placeholder}}: ids of different lengths`);
        data = replaceAll(data, Buffer.from(golden), Buffer.from(ours));
      }
    }
    for (const [golden, ours] of this.invocationIds) data = replaceAll(data, Buffer.from(golden), Buffer.from(ours));
    return data;
  }
}

/** One PUBLISH seen on Redis. */
export interface Published {
  readonly channel: string;
  readonly payload: Buffer;
}

/** A raw subscriber on every channel (PSUBSCRIBE *), as the capture's spy; it counts as a receiver of every PUBLISH. */
export class RedisSpy {
  readonly messages: Published[] = [];
  private readonly redis: Redis;

  private constructor(url: string) {
    this.redis = new Redis(url);
    this.redis.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, payload: Buffer) => {
      this.messages.push({ channel: channel.toString('utf8'), payload });
    });
  }

  static async start(url: string): Promise<RedisSpy> {
    const spy = new RedisSpy(url);
    await spy.attach();
    return spy;
  }

  attach(): Promise<unknown> {
    return this.redis.psubscribe('*');
  }

  detach(): Promise<unknown> {
    return this.redis.punsubscribe('*');
  }

  /** Resolves with the messages after index `from` once there are at least `count` of them. */
  async since(from: number, count: number, timeoutMs = 5000): Promise<Published[]> {
    await eventually(() => this.messages.length - from >= count, `${count} publish(es) on Redis`, timeoutMs);
    return this.messages.slice(from);
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** Reverses redis-server's escaping of MONITOR arguments (sdscatrepr: `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b`, `\xHH`). */
export function unescapeMonitorArgument(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char !== '\\') {
      bytes.push(...Buffer.from(char, 'latin1'));
      continue;
    }
    const next = text[++i];
    if (next === 'x') {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push({ n: 0x0a, r: 0x0d, t: 0x09, a: 0x07, b: 0x08 }[next] ?? next.charCodeAt(0));
    }
  }
  return Buffer.from(bytes);
}

/** One command seen by MONITOR. */
export interface MonitoredCommand {
  /** Upper-case command name. */
  readonly command: string;
  /** Arguments, as bytes. */
  readonly args: Buffer[];
}

/** Records every command Redis executes (MONITOR), e.g. to see the order of a starting server's SUBSCRIBEs. */
export class RedisMonitor {
  readonly commands: MonitoredCommand[] = [];

  private constructor(private readonly connection: Redis) {
    connection.on('monitor', (_time: string, args: string[]) => {
      // ioredis has already turned `\"` into `"`; every other escape is still there.
      const [name, ...rest] = args;
      this.commands.push({ command: name.toUpperCase(), args: rest.map(unescapeMonitorArgument) });
    });
  }

  static async start(url: string): Promise<RedisMonitor> {
    // `monitor()` opens a connection of its own in monitor mode; the first one is not needed after that.
    const first = new Redis(url);
    try {
      return new RedisMonitor(await first.monitor());
    } finally {
      first.disconnect();
    }
  }

  /** The PUBLISH commands seen after index `from`, as publishes. */
  publishes(from = 0): Published[] {
    return this.commands
      .slice(from)
      .filter((command) => command.command === 'PUBLISH')
      .map((command) => ({ channel: command.args[0].toString('utf8'), payload: command.args[1] }));
  }

  /** `SUBSCRIBE <channel>` lines, in order, for the channels that `accept` selects. */
  subscribes(accept: (channel: string) => boolean): string[] {
    return this.commands
      .filter((command) => command.command === 'SUBSCRIBE')
      .flatMap((command) => command.args.map((arg) => arg.toString('utf8')))
      .filter(accept)
      .map((channel) => `SUBSCRIBE ${channel}`);
  }

  close(): void {
    this.connection.disconnect();
  }
}

/** The hub channels Redis has subscribers for (`PUBSUB CHANNELS`), sorted; `prefix` selects the hub. */
export async function subscribedChannels(admin: Redis, prefix: string): Promise<string[]> {
  const channels = (await admin.call('PUBSUB', 'CHANNELS', '*')) as string[];
  return channels.filter((channel) => channel.startsWith(prefix)).sort();
}

/**
 * Arguments a client received, in the capture's normal form: JSON values as they are, bytes as `{bytesHex}`, dates
 * as their ISO text (what `JSON.stringify` makes of them).
 */
export function normalDelivery(method: string, args: unknown[]): unknown[] {
  const text = JSON.stringify([method, ...args], (_key, value: unknown) =>
    value instanceof Uint8Array ? { bytesHex: Buffer.from(value).toString('hex') } : value,
  );
  return JSON.parse(text) as unknown[];
}

/** How {@link GoldenClients.connect} sets up a client. */
export interface GoldenClientOptions {
  /** The `user` query parameter (the sample's user id). */
  readonly user?: string;
  readonly msgpack?: boolean;
  /** The `GetAnswer` handler; `null` for none; default: answers `answer to <question>` as the capture's clients. */
  readonly getAnswer?: ((question: unknown) => unknown) | null;
}

/**
 * The capture's test clients, by the capture's names (`jA`, `mB`, …), on servers of ours by label: each records
 * `ReceiveMessage` and `Values` in the capture's normal form and answers `GetAnswer` like the capture's clients.
 */
export class GoldenClients {
  private readonly pools = new Map<string, ClientPool>();
  private readonly clients = new Map<string, TestClient>();
  private readonly received = new Map<string, unknown[][]>();

  /** Makes server `label` reachable at `hubUrl()`. */
  addServer(label: string, hubUrl: () => string): void {
    this.pools.set(label, new ClientPool(hubUrl));
  }

  /** Connects `name` to server `label` and waits until the server registered it (an answered invocation). */
  async connect(name: string, label: string, options: GoldenClientOptions = {}): Promise<TestClient> {
    const pool = this.pools.get(label);
    if (pool === undefined) throw new Error(`no server ${label}`);
    const log: unknown[][] = [];
    this.received.set(name, log);
    const handlers: Record<string, (...args: unknown[]) => unknown> = {
      ReceiveMessage: (...args) => log.push(normalDelivery('ReceiveMessage', args)),
      Values: (...args) => log.push(normalDelivery('Values', args)),
    };
    if (options.getAnswer !== null)
      handlers.GetAnswer = options.getAnswer ?? ((question) => `answer to ${String(question)}`);
    const client = await pool.connect(
      {
        transport: HttpTransportType.WebSockets,
        handlers,
        ...(options.user !== undefined && { query: `user=${options.user}` }),
        ...(options.msgpack === true && { protocol: new MessagePackHubProtocol() }),
      },
      [],
    );
    await client.connection.invoke('WhoAmI');
    this.clients.set(name, client);
    return client;
  }

  get(name: string): TestClient {
    const client = this.clients.get(name);
    if (client === undefined) throw new Error(`client ${name} is not connected`);
    return client;
  }

  id(name: string): string {
    return this.get(name).connection.connectionId!;
  }

  /** Names of the connected clients. */
  names(): string[] {
    return [...this.clients.keys()];
  }

  /** How many invocations each client has received so far. */
  mark(): Map<string, number> {
    return new Map([...this.received].map(([name, log]) => [name, log.length]));
  }

  /** What `name` received after `mark`. */
  since(mark: ReadonlyMap<string, number>, name: string): unknown[][] {
    return (this.received.get(name) ?? []).slice(mark.get(name) ?? 0);
  }

  /**
   * Waits until every connected client received at least what `delivered` (the capture's, by name) lists for it
   * since `mark`, then for `settleMs` more, and returns what each received.
   */
  async deliveries(mark: ReadonlyMap<string, number>, delivered: Record<string, unknown[][]>, settleMs: number) {
    const names = this.names();
    await eventually(
      () => names.every((name) => this.since(mark, name).length >= (delivered[name]?.length ?? 0)),
      'the deliveries',
    );
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return {
      ours: Object.fromEntries(names.map((name) => [name, this.since(mark, name)])),
      expected: Object.fromEntries(names.map((name) => [name, delivered[name] ?? []])),
    };
  }

  async stop(name: string): Promise<void> {
    await this.get(name).connection.stop();
    this.clients.delete(name);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.stopAll()));
    this.clients.clear();
  }
}
