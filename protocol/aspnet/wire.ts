/**
 * The ASP.NET SignalR 2.x wire format (the .NET Framework generation, spoken by jquery.signalR, signalr-no-jquery
 * and Microsoft.AspNet.SignalR.Client): negotiate body, persistent responses, hub requests and hub responses.
 * Pure: no I/O, no timers. Spec: docs/protocol.md §7.
 */

/** The body of `/negotiate` (docs/protocol.md §7.2). Times are in seconds, as 2.x sends them. */
export interface LegacyNegotiateBody {
  readonly Url: string;
  readonly ConnectionToken: string;
  readonly ConnectionId: string;
  readonly KeepAliveTimeout: number | null;
  readonly DisconnectTimeout: number;
  readonly ConnectionTimeout: number;
  readonly TryWebSockets: boolean;
  readonly ProtocolVersion: string;
  readonly TransportConnectTimeout: number;
  readonly LongPollDelay: number;
}

/** `/start`'s answer and `/ping`'s, byte for byte as the 2.x server writes them (docs/protocol.md §7.3). */
export const START_RESPONSE = '{ "Response": "started" }';
export const PING_RESPONSE = '{ "Response": "pong" }';

/** The protocol versions the 2.x server accepts: a client's `clientProtocol` is clamped into this range (docs/protocol.md §7.2). */
const MIN_PROTOCOL = [1, 2] as const;
const MAX_PROTOCOL = [2, 0] as const;

/**
 * The `ProtocolVersion` negotiate answers for a client's `clientProtocol`: the client's version clamped to 1.2–2.0,
 * 1.2 when it sent none or an unparsable one (ProtocolResolver.Resolve).
 */
export function resolveProtocolVersion(clientProtocol: string | undefined): string {
  const match =
    clientProtocol === undefined ? null : /^(\d{1,9})\.(\d{1,9})(?:\.\d{1,9}){0,2}$/.exec(clientProtocol.trim());
  if (match === null) return `${MIN_PROTOCOL[0]}.${MIN_PROTOCOL[1]}`;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  const compare = (a: readonly [number, number]) => major - a[0] || minor - a[1];
  if (compare(MAX_PROTOCOL) > 0) return `${MAX_PROTOCOL[0]}.${MAX_PROTOCOL[1]}`;
  if (compare(MIN_PROTOCOL) < 0) return `${MIN_PROTOCOL[0]}.${MIN_PROTOCOL[1]}`;
  // Version.ToString() prints what was parsed, components included.
  return clientProtocol!.trim();
}

/**
 * Whether a client of this `clientProtocol` sends `/start` (1.4 and later), so the hubs' `OnConnected` waits for it;
 * for older clients (ASP.NET SignalR 2.0) it runs at connect (ProtocolResolver.SupportsDelayedStart;
 * docs/protocol.md §7.3).
 */
export function supportsDelayedStart(clientProtocol: string | undefined): boolean {
  const [major, minor] = resolveProtocolVersion(clientProtocol).split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 4);
}

/** What a persistent response carries besides its messages (docs/protocol.md §7.4). */
export interface PersistentResponseFlags {
  /** `"S":1`: the first response of a connection, which the client's start waits for. */
  readonly initializing?: boolean;
  /** `"T":1`: the server is shutting down, the client should reconnect. */
  readonly reconnect?: boolean;
  /** `"G"`: the protected groups token, sent when the connection's groups changed. */
  readonly groupsToken?: string;
  /** `"L"`: milliseconds a long-polling client waits before its next poll. */
  readonly longPollDelay?: number;
  /** `"E"`: an error that ends the connection; the client stops and does not reconnect. */
  readonly error?: string;
}

const OPEN_BRACKET = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');

/**
 * One persistent response `{"C":cursor,…,"M":[…]}` around messages already serialized as JSON values — each hub
 * message is serialized once, however many responses (and connections) it goes out in.
 */
export function writePersistentResponse(
  cursor: string,
  messages: readonly Buffer[],
  flags: PersistentResponseFlags = {},
): Buffer {
  let head = `{"C":${JSON.stringify(cursor)},`;
  if (flags.initializing === true) head += '"S":1,';
  if (flags.reconnect === true) head += '"T":1,';
  if (flags.groupsToken !== undefined) head += `"G":${JSON.stringify(flags.groupsToken)},`;
  if (flags.longPollDelay !== undefined) head += `"L":${flags.longPollDelay},`;
  if (flags.error !== undefined) head += `"E":${JSON.stringify(flags.error)},`;
  head += '"M":';
  const parts: Buffer[] = [Buffer.from(head), OPEN_BRACKET];
  for (let i = 0; i < messages.length; i++) {
    if (i > 0) parts.push(COMMA);
    parts.push(messages[i]);
  }
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

/** A client call of a hub, `{"H":hub,"M":method,"A":[args]}` (ClientHubInvocation; docs/protocol.md §7.5). */
export function writeClientHubInvocation(hub: string, method: string, args: readonly unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ H: hub, M: method, A: args }));
}

/** A hub method's answer (HubResponse; docs/protocol.md §7.5): `I` always, the rest when set. */
export interface LegacyHubResponse {
  readonly id: string;
  readonly result?: unknown;
  readonly state?: Readonly<Record<string, unknown>>;
  readonly error?: string;
  readonly isHubException?: boolean;
  readonly errorData?: unknown;
  /** A progress report: `{"I":"P|id","P":{"I":id,"D":value}}`. */
  readonly progress?: unknown;
}

/** Serializes a hub response with 2.x's one-letter names, leaving out what is not set. */
export function writeHubResponse(response: LegacyHubResponse): Buffer {
  const body: Record<string, unknown> = {};
  if (response.state !== undefined && Object.keys(response.state).length > 0) body.S = response.state;
  if (response.progress !== undefined) {
    body.I = `P|${response.id}`;
    body.P = { I: response.id, D: response.progress };
    return Buffer.from(JSON.stringify(body));
  }
  if (response.result !== undefined) body.R = response.result;
  body.I = response.id;
  if (response.error !== undefined) {
    body.E = response.error;
    if (response.isHubException === true) {
      body.H = true;
      if (response.errorData !== undefined) body.D = response.errorData;
    }
  }
  return Buffer.from(JSON.stringify(body));
}

/** A hub invocation as a 2.x client sends it (HubRequest; docs/protocol.md §7.5). */
export interface LegacyHubRequest {
  readonly hub: string;
  readonly method: string;
  readonly args: unknown[];
  /** `I`: absent on a client that does not wait for the answer. */
  readonly id: string | undefined;
  readonly state: Record<string, unknown> | undefined;
}

/** Invalid data from a 2.x client; the message is what the client is told. */
export class LegacyProtocolError extends Error {
  override readonly name = 'InvalidDataException';
}

/** Reads `{"H":hub,"M":method,"A":[args],"I":id,"S":state}`; throws {@link LegacyProtocolError} on anything else. */
export function parseHubRequest(text: string): LegacyHubRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LegacyProtocolError('The hub request is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LegacyProtocolError('A hub request must be a JSON object.');
  }
  const { H, M, A, I, S } = value as Record<string, unknown>;
  if (typeof H !== 'string' || H === '') throw new LegacyProtocolError('A hub request needs the hub name (H).');
  if (typeof M !== 'string' || M === '') throw new LegacyProtocolError('A hub request needs the method name (M).');
  if (A !== undefined && A !== null && !Array.isArray(A))
    throw new LegacyProtocolError("A hub request's arguments (A) must be an array.");
  const id =
    I === undefined || I === null ? undefined : typeof I === 'string' || typeof I === 'number' ? String(I) : undefined;
  const state = typeof S === 'object' && S !== null && !Array.isArray(S) ? (S as Record<string, unknown>) : undefined;
  return { hub: H, method: M, args: (A as unknown[] | undefined | null) ?? [], id, state };
}

/** `connectionData`: the hubs a connection subscribes to, `[{"name":"chathub"}]` (docs/protocol.md §7.2). */
export function parseConnectionData(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LegacyProtocolError('connectionData is not valid JSON.');
  }
  if (!Array.isArray(value)) throw new LegacyProtocolError('connectionData must be a JSON array.');
  return value.map((entry) => {
    // The JavaScript client writes `name`, the .NET client `Name`; 2.x reads property names in any case.
    const key =
      typeof entry === 'object' && entry !== null
        ? Object.keys(entry).find((candidate) => candidate.toLowerCase() === 'name')
        : undefined;
    const name = key === undefined ? undefined : (entry as Record<string, unknown>)[key];
    if (typeof name !== 'string' || name === '')
      throw new LegacyProtocolError('Each connectionData entry needs a hub name.');
    return name;
  });
}

/** The name the 2.x proxy generator gives a hub or method: its first letter lower-cased (JsonUtility.CamelCase). */
export function camelCase(name: string): string {
  return name.length === 0 ? name : name[0].toLowerCase() + name.slice(1);
}
