/**
 * The JSON hub protocol (`json`, Text transfer format), as ASP.NET Core's `JsonHubProtocol` reads and writes it.
 *
 * Spec: docs/protocol.md §2.1 (0x1E framing), §2.4 (properties, the order .NET writes them, what it accepts).
 * Reading accepts properties in any order (the official client writes `type` last) and skips unknown ones;
 * each rejection carries .NET's `InvalidDataException` text. Writing emits .NET's property order.
 */
import { isUtf8 } from 'node:buffer';
import {
  HubProtocolError,
  JsonNumberFormatError,
  type HubMessageReader,
  type HubMessageReaderOptions,
  type HubProtocol,
} from './hub-protocol';
import { MessageType, hasResult, type CompletionMessage, type HubMessage, type MessageHeaders } from './messages';
import { RECORD_SEPARATOR_CHAR, RecordSplitter } from './text-framing';

/** Protocol versions accepted in the handshake: .NET 8+ accepts `version <= 2` (docs/protocol.md §2.2). */
const MAX_VERSION = 2;

type JsonObject = Record<string, unknown>;

function missing(property: string): HubProtocolError {
  return new HubProtocolError(`Missing required property '${property}'.`);
}

/**
 * .NET's error for invalid UTF-8 in a string it reads (`Utf8JsonReader.GetString`). Payload values bound as
 * `JsonElement` and skipped properties are never decoded there, so only the strings the protocol itself reads fail.
 */
export class InvalidUtf8Error extends HubProtocolError {
  override readonly name = 'InvalidOperationException';

  constructor() {
    super('Cannot transcode invalid UTF-8 JSON text to UTF-16 string.');
  }
}

/**
 * Fails with {@link InvalidUtf8Error} when `replaced` (the record held invalid UTF-8, decoded as U+FFFD) and the
 * string holds a replacement character.
 */
export function checkDecoded(value: string, replaced: boolean): string {
  if (replaced && value.includes('\ufffd')) throw new InvalidUtf8Error();
  return value;
}

/**
 * A string property: absent is `undefined`; anything else but a string, `null` included, is an error (.NET's
 * ReadAsString).
 */
function readString(value: unknown, property: string, replaced: boolean): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HubProtocolError(`Expected '${property}' to be of type String.`);
  return checkDecoded(value, replaced);
}

const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = 2 ** 63;

/**
 * An integer property as .NET reads it: not a number ⇒ `Expected '<name>' to be of type Number.`; a number that is
 * not an integer of that size ⇒ the `FormatException` of `GetInt32`/`GetInt64`.
 */
export function readInteger(value: unknown, property: string, integerType: 'Int32' | 'Int64'): number {
  if (typeof value !== 'number') throw new HubProtocolError(`Expected '${property}' to be of type Number.`);
  const limit = integerType === 'Int32' ? INT32_MAX : INT64_MAX;
  if (!Number.isInteger(value) || value > limit || value < -limit - 1) throw new JsonNumberFormatError(integerType);
  return value;
}

/** The name .NET gives the token a JSON value starts with, in "Unexpected JSON Token Type '<name>'". */
export function jsonTokenName(value: unknown): string {
  if (Array.isArray(value)) return 'Array';
  if (value === null) return 'Null';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return 'String';
  if (typeof value === 'number') return 'Number';
  return 'Object';
}

/**
 * The text of a record. Invalid UTF-8 is replaced by U+FFFD: .NET keeps such bytes in payload values (and writes
 * them back as `\uFFFD`) and fails only on the strings it decodes itself (see {@link checkDecoded}).
 */
export function recordText(record: Uint8Array): string {
  return Buffer.from(record.buffer, record.byteOffset, record.byteLength).toString('utf8');
}

function readHeaders(value: unknown, replaced: boolean): MessageHeaders | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HubProtocolError("Expected 'headers' to be of type StartObject.");
  }
  const headers = value as JsonObject;
  for (const name in headers) {
    if (typeof headers[name] !== 'string') {
      throw new HubProtocolError(`Expected header '${name}' to be of type String.`);
    }
    checkDecoded(headers[name] as string, replaced);
  }
  return Object.keys(headers).length === 0 ? undefined : (headers as MessageHeaders);
}

function readArray(value: unknown, property: string): unknown[] {
  if (!Array.isArray(value)) throw new HubProtocolError(`Expected '${property}' to be of type Array.`);
  return value;
}

function readStreamIds(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const ids = readArray(value, 'streamIds');
  for (const id of ids) {
    if (typeof id !== 'string') throw new HubProtocolError("Expected 'streamIds' to contain only strings.");
  }
  return ids as string[];
}

function readSequenceId(value: unknown): number {
  if (value === undefined) throw missing('sequenceId');
  return readInteger(value, 'sequenceId', 'Int64');
}

/** Spreads `headers` into a message only when present, so absent headers stay absent. */
function withHeaders<T extends object>(message: T, headers: MessageHeaders | undefined): T {
  return headers === undefined ? message : { ...message, headers };
}

/**
 * Turns one parsed JSON record into a hub message, or `null` for a message type this server does not know
 * (future types are skipped, src/SignalR/common/Protocols.Json/src/Protocol/JsonHubProtocol.cs@v10.0.0 L466-L470).
 * @param replaced whether the record held invalid UTF-8 that decoding replaced by U+FFFD
 */
export function bindJsonMessage(value: unknown, replaced = false): HubMessage | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HubProtocolError(`Unexpected JSON Token Type '${jsonTokenName(value)}'. Expected a JSON Object.`);
  }
  const json = value as JsonObject;
  if (json.type === undefined) throw missing('type');
  const type = readInteger(json.type, 'type', 'Int32');
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const invocationId = readString(json.invocationId, 'invocationId', replaced) || undefined;
      const target = readString(json.target, 'target', replaced);
      const args = json.arguments === undefined ? undefined : readArray(json.arguments, 'arguments');
      const streamIds = readStreamIds(json.streamIds);
      const headers = readHeaders(json.headers, replaced);
      if (type === MessageType.StreamInvocation && invocationId === undefined) throw missing('invocationId');
      // An empty target is read; binding then fails with "Method does not exist." as in .NET.
      if (target === undefined) throw missing('target');
      if (args === undefined) throw missing('arguments');
      const message = { type, target, arguments: args } as {
        type: typeof type;
        target: string;
        arguments: unknown[];
        invocationId?: string;
        streamIds?: string[];
      };
      if (invocationId !== undefined) message.invocationId = invocationId;
      if (streamIds !== undefined) message.streamIds = streamIds;
      return withHeaders(message, headers) as HubMessage;
    }
    case MessageType.StreamItem: {
      const invocationId = readString(json.invocationId, 'invocationId', replaced);
      const headers = readHeaders(json.headers, replaced);
      if (!invocationId) throw missing('invocationId');
      if (!('item' in json)) throw missing('item');
      return withHeaders({ type, invocationId, item: json.item }, headers);
    }
    case MessageType.Completion: {
      const invocationId = readString(json.invocationId, 'invocationId', replaced);
      const error = readString(json.error, 'error', replaced);
      const headers = readHeaders(json.headers, replaced);
      if (!invocationId) throw missing('invocationId');
      const carriesResult = 'result' in json;
      if (error !== undefined && carriesResult) {
        throw new HubProtocolError("The 'error' and 'result' properties are mutually exclusive.");
      }
      const message: CompletionMessage =
        error !== undefined
          ? { type, invocationId, error }
          : carriesResult
            ? { type, invocationId, result: json.result }
            : { type, invocationId };
      return withHeaders(message, headers);
    }
    case MessageType.CancelInvocation: {
      const invocationId = readString(json.invocationId, 'invocationId', replaced);
      const headers = readHeaders(json.headers, replaced);
      if (!invocationId) throw missing('invocationId');
      return withHeaders({ type, invocationId }, headers);
    }
    case MessageType.Ping:
      return { type };
    case MessageType.Close: {
      const error = readString(json.error, 'error', replaced);
      const allowReconnect = json.allowReconnect;
      if (allowReconnect !== undefined && typeof allowReconnect !== 'boolean') {
        throw new HubProtocolError("Expected 'allowReconnect' to be true or false.");
      }
      const message: { type: typeof type; error?: string; allowReconnect?: boolean } = { type };
      if (error !== undefined) message.error = error;
      if (allowReconnect === true) message.allowReconnect = true;
      return message as HubMessage;
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type, sequenceId: readSequenceId(json.sequenceId) };
    default:
      return null;
  }
}

/** Parses one record (separator excluded). */
export function parseJsonRecord(record: Buffer): HubMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(recordText(record));
  } catch {
    throw new HubProtocolError('Error reading JSON.');
  }
  return bindJsonMessage(value, !isUtf8(record));
}

class JsonMessageReader implements HubMessageReader {
  private readonly splitter: RecordSplitter;

  constructor(options: HubMessageReaderOptions) {
    this.splitter = new RecordSplitter(options.maximumMessageSize);
  }

  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  push(chunk: Uint8Array, onMessage: (message: HubMessage) => void): void {
    this.splitter.push(chunk, (record) => {
      const message = parseJsonRecord(record);
      if (message !== null) onMessage(message);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/** .NET writes a UTC `DateTime` as ISO-8601 with trailing zero fractions dropped: `2020-01-02T03:04:05Z`. */
function formatDate(date: Date): string {
  const iso = date.toISOString();
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return fraction === '' ? `${iso.slice(0, 19)}Z` : `${iso.slice(0, 19)}.${fraction}Z`;
}

/**
 * Maps the payload values System.Text.Json writes differently from `JSON.stringify`: binary as base64 (as
 * `byte[]`), dates in .NET's form, big integers as numbers.
 */
function payloadReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  if (raw instanceof ArrayBuffer) return Buffer.from(raw).toString('base64');
  if (raw instanceof Date) return Number.isNaN(raw.getTime()) ? null : formatDate(raw);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Serializes one payload value (argument, result, item) as JSON text; `undefined` becomes `null`. */
export function stringifyPayload(value: unknown): string {
  // Primitives take the native fast path; only objects and big integers need the replacer.
  const text =
    (typeof value === 'object' && value !== null) || typeof value === 'bigint'
      ? JSON.stringify(value, payloadReplacer)
      : JSON.stringify(value);
  return text === undefined ? 'null' : text;
}

function stringifyArguments(args: readonly unknown[]): string {
  let needsReplacer = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if ((typeof arg === 'object' && arg !== null) || typeof arg === 'bigint') {
      needsReplacer = true;
      break;
    }
  }
  // JSON.stringify turns `undefined` array items into null, as .NET writes a null argument.
  return needsReplacer ? JSON.stringify(args, payloadReplacer) : JSON.stringify(args);
}

function headersJson(headers: MessageHeaders | undefined): string {
  if (headers === undefined) return '';
  const keys = Object.keys(headers);
  return keys.length === 0 ? '' : `,"headers":${JSON.stringify(headers)}`;
}

function invocationIdJson(invocationId: string | undefined): string {
  return invocationId ? `,"invocationId":${JSON.stringify(invocationId)}` : '';
}

/**
 * Serializes one message as .NET's writer does
 * (src/SignalR/common/Protocols.Json/src/Protocol/JsonHubProtocol.cs@v10.0.0 L516-L726), without the separator.
 */
export function writeJsonText(message: HubMessage): string {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const streamIds = message.streamIds === undefined ? '' : `,"streamIds":${JSON.stringify(message.streamIds)}`;
      return `{"type":${message.type}${headersJson(message.headers)}${invocationIdJson(message.invocationId)},"target":${JSON.stringify(message.target)},"arguments":${stringifyArguments(message.arguments)}${streamIds}}`;
    }
    case MessageType.StreamItem:
      return `{"type":2${headersJson(message.headers)}${invocationIdJson(message.invocationId)},"item":${stringifyPayload(message.item)}}`;
    case MessageType.Completion: {
      let outcome = '';
      if (message.error) outcome = `,"error":${JSON.stringify(message.error)}`;
      else if (hasResult(message)) outcome = `,"result":${stringifyPayload(message.result)}`;
      return `{"type":3${headersJson(message.headers)}${invocationIdJson(message.invocationId)}${outcome}}`;
    }
    case MessageType.CancelInvocation:
      return `{"type":5${headersJson(message.headers)}${invocationIdJson(message.invocationId)}}`;
    case MessageType.Ping:
      return '{"type":6}';
    case MessageType.Close: {
      const error = message.error === undefined ? '' : `,"error":${JSON.stringify(message.error)}`;
      return `{"type":7${error}${message.allowReconnect === true ? ',"allowReconnect":true' : ''}}`;
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return `{"type":${message.type},"sequenceId":${message.sequenceId}}`;
  }
}

/** The `json` hub protocol. */
export class JsonHubProtocol implements HubProtocol {
  readonly name = 'json';
  readonly version = MAX_VERSION;
  readonly transferFormat = 'Text' as const;

  isVersionSupported(version: number): boolean {
    return version <= MAX_VERSION;
  }

  createReader(options: HubMessageReaderOptions): HubMessageReader {
    return new JsonMessageReader(options);
  }

  writeMessage(message: HubMessage): Buffer {
    return Buffer.from(writeJsonText(message) + RECORD_SEPARATOR_CHAR, 'utf8');
  }
}

/** The shared instance of the JSON protocol (it holds no state). */
export const jsonHubProtocol = new JsonHubProtocol();
