/**
 * The MessagePack hub protocol (`messagepack`, Binary transfer format), as ASP.NET Core's `MessagePackHubProtocol`
 * reads and writes it.
 *
 * Spec: docs/protocol.md §2.1 (VarInt framing, receive limit), §2.3 (types), §2.5 (array layouts), §2.11 (unknown
 * types). Every body is one array whose first item is the type. Writing emits exactly the layouts .NET writes
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 L425-L610): 6-item
 * Invocations, 3-item Closes, `80` for absent headers. Reading mirrors .NET's reader
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 L41-L264): it reads
 * the fields one after another, as `MessagePackReader` does, so the declared array length matters only where .NET
 * consults it (streamIds after more than 5 items, allowReconnect after more than 2); extra items are ignored, missing
 * ones fail with the text of the field .NET was reading. Values follow `protocol/messagepack`.
 *
 * .NET binds arguments to the hub method's parameter types while parsing and turns a binding failure into a
 * message for the dispatcher; this reader has no binder, so it reads payloads untyped and only rejects bytes that
 * are not MessagePack at all (with .NET's binding texts).
 */
import {
  HubProtocolError,
  type HubMessageReader,
  type HubMessageReaderOptions,
  type HubProtocol,
} from './hub-protocol';
import { MessageType, PING, hasResult, type HubMessage, type MessageHeaders } from './messages';
import { LengthPrefixSplitter, MAX_LENGTH_PREFIX_SIZE, lengthPrefixLength, writeLengthPrefix } from './binary-framing';
import { MessagePackFormatError, MessagePackReader, MessagePackWriter } from './messagepack';

/**
 * Protocol versions accepted in the handshake: .NET 8+ accepts `version <= 2` (docs/protocol.md §2.2,
 * src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocol.cs@v10.0.0 L54-L57).
 */
const MAX_VERSION = 2;

/**
 * Completion result kinds
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 `ErrorResult`,
 * `VoidResult`, `NonVoidResult`).
 */
const ERROR_RESULT = 1;
const VOID_RESULT = 2;
const NON_VOID_RESULT = 3;

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * Wraps a codec error in .NET's `InvalidDataException` for the field being read
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 `Read*` helpers).
 */
function fieldError(text: string, cause: unknown): HubProtocolError {
  if (!(cause instanceof MessagePackFormatError)) throw cause;
  return new HubProtocolError(text, { cause });
}

/** A codec error .NET does not wrap (the body's array header, the stream ids). */
function unwrappedError(cause: unknown): HubProtocolError {
  if (!(cause instanceof MessagePackFormatError)) throw cause;
  return new HubProtocolError(cause.message, { cause });
}

function readString(reader: MessagePackReader, field: string): string | null {
  try {
    return reader.readString();
  } catch (error) {
    throw fieldError(`Reading '${field}' as String failed.`, error);
  }
}

function readInt32(reader: MessagePackReader, field: string): number {
  try {
    return reader.readInt32();
  } catch (error) {
    throw fieldError(`Reading '${field}' as Int32 failed.`, error);
  }
}

function readSequenceId(reader: MessagePackReader): number {
  try {
    return Number(reader.readInt64());
  } catch (error) {
    throw fieldError("Reading 'sequenceId' as Int64 failed.", error);
  }
}

/**
 * `ThrowIfNullOrEmpty` (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0):
 * the text is "Null or empty " + what.
 */
function required(value: string | null, what: string): string {
  if (!value) throw new HubProtocolError(`Null or empty ${what}.`);
  return value;
}

function readInvocationId(reader: MessagePackReader): string | null {
  return readString(reader, 'invocationId');
}

/**
 * Headers: a map of non-empty strings, `undefined` when empty
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 L241-L264).
 */
function readHeaders(reader: MessagePackReader): MessageHeaders | undefined {
  let count: number;
  try {
    count = reader.readMapHeader();
  } catch (error) {
    throw fieldError("Reading map length for 'headers' failed.", error);
  }
  if (count === 0) return undefined;
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const key = required(readString(reader, `headers[${i}].Key`), 'key in header');
    const value = required(readString(reader, `headers[${i}].Value`), 'value in header');
    if (Object.prototype.hasOwnProperty.call(headers, key)) {
      // Dictionary<string, string>.Add on a duplicate key (an ArgumentException in .NET).
      throw new HubProtocolError(`An item with the same key has already been added. Key: ${key}`);
    }
    if (key === '__proto__') {
      Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true });
    } else {
      headers[key] = value;
    }
  }
  return headers;
}

/** Arguments: an array of untyped values (.NET: `BindArguments`, whose texts these are). */
function readArguments(reader: MessagePackReader): unknown[] {
  let count: number;
  try {
    count = reader.readArrayHeader();
  } catch (error) {
    throw fieldError("Reading array length for 'arguments' failed.", error);
  }
  const args = new Array<unknown>(count);
  for (let i = 0; i < count; i++) {
    try {
      args[i] = reader.readValue();
    } catch (error) {
      throw fieldError(
        `Error binding argument ${i + 1}. Make sure that the types of the provided values match the types of the hub method being invoked.`,
        error,
      );
    }
  }
  return args;
}

/** One payload value (.NET: `DeserializeObject`, with `Object` as the type an untyped reader binds to). */
function readPayload(reader: MessagePackReader, field: string): unknown {
  try {
    return reader.readValue();
  } catch (error) {
    throw fieldError(`Deserializing object of the \`Object\` type for '${field}' failed.`, error);
  }
}

/**
 * Stream ids: only read when the Invocation has more than 5 items; an empty list means none
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 `ReadStreamIds`).
 */
function readStreamIds(reader: MessagePackReader): string[] | undefined {
  let count: number;
  try {
    count = reader.readArrayHeader();
  } catch (error) {
    throw fieldError("Reading array length for 'streamIds' failed.", error);
  }
  if (count === 0) return undefined;
  const ids = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    let id: string | null;
    try {
      id = reader.readString();
    } catch (error) {
      // .NET reads the ids without a field wrapper, so the codec's own text surfaces.
      throw unwrappedError(error);
    }
    ids[i] = required(id, 'value in streamIds received');
  }
  return ids;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function invocation(reader: MessagePackReader, type: 1 | 4, itemCount: number): HubMessage {
  const headers = readHeaders(reader);
  const invocationId = readInvocationId(reader);
  const name = type === MessageType.Invocation ? 'Invocation' : 'StreamInvocation';
  if (type === MessageType.StreamInvocation) required(invocationId, `invocation ID for ${name} message`);
  const target = required(readString(reader, 'target'), `target for ${name} message`);
  const args = readArguments(reader);
  // Clients before stream support send 5 items (and the official TS client still does when it has no streams).
  const streamIds = itemCount > 5 ? readStreamIds(reader) : undefined;
  const message: Mutable<{
    type: 1 | 4;
    target: string;
    arguments: unknown[];
    invocationId?: string;
    streamIds?: string[];
    headers?: MessageHeaders;
  }> = { type, target, arguments: args };
  // An empty id, like nil, means a non-blocking invocation.
  if (invocationId) message.invocationId = invocationId;
  if (streamIds !== undefined) message.streamIds = streamIds;
  if (headers !== undefined) message.headers = headers;
  return message as HubMessage;
}

function streamItem(reader: MessagePackReader): HubMessage {
  const headers = readHeaders(reader);
  const invocationId = required(readInvocationId(reader), 'invocation ID for StreamItem message');
  const item = readPayload(reader, 'item');
  return headers === undefined
    ? { type: MessageType.StreamItem, invocationId, item }
    : { type: MessageType.StreamItem, invocationId, item, headers };
}

function completion(reader: MessagePackReader): HubMessage {
  const headers = readHeaders(reader);
  const invocationId = required(readInvocationId(reader), 'invocation ID for Completion message');
  const resultKind = readInt32(reader, 'resultKind');
  const message: Mutable<{
    type: 3;
    invocationId: string;
    error?: string;
    result?: unknown;
    headers?: MessageHeaders;
  }> = { type: MessageType.Completion, invocationId };
  switch (resultKind) {
    case ERROR_RESULT: {
      // A nil error reads as no error at all: .NET builds a Completion with neither error nor result.
      const error = readString(reader, 'error');
      if (error !== null) message.error = error;
      break;
    }
    case NON_VOID_RESULT:
      message.result = readPayload(reader, 'argument');
      break;
    case VOID_RESULT:
      break;
    default:
      throw new HubProtocolError('Invalid invocation result kind.');
  }
  if (headers !== undefined) message.headers = headers;
  return message as HubMessage;
}

function cancelInvocation(reader: MessagePackReader): HubMessage {
  const headers = readHeaders(reader);
  const invocationId = required(readInvocationId(reader), 'invocation ID for CancelInvocation message');
  return headers === undefined
    ? { type: MessageType.CancelInvocation, invocationId }
    : { type: MessageType.CancelInvocation, invocationId, headers };
}

function close(reader: MessagePackReader, itemCount: number): HubMessage {
  const error = readString(reader, 'error');
  let allowReconnect = false;
  if (itemCount > 2) {
    try {
      allowReconnect = reader.readBoolean();
    } catch (cause) {
      throw fieldError("Reading 'allowReconnect' as Boolean failed.", cause);
    }
  }
  // An empty error string is still an error
  // (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0
  // `CreateCloseMessage`).
  const message: Mutable<{ type: 7; error?: string; allowReconnect?: boolean }> = { type: MessageType.Close };
  if (error !== null) message.error = error;
  if (allowReconnect) message.allowReconnect = true;
  return message as HubMessage;
}

const EMPTY = Buffer.alloc(0);
const sharedReader = new MessagePackReader(EMPTY);

/**
 * Parses one message body (the bytes after the length prefix), `body[start..end)`. Returns `null` for a message
 * type this server does not know: future types are skipped
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 L67-L69,
 * docs/protocol.md §2.11). Throws {@link HubProtocolError} with .NET's texts for invalid bodies.
 */
export function parseMessagePackMessage(body: Uint8Array, start = 0, end = body.length): HubMessage | null {
  // Parsing calls no user code, so one reader serves every connection.
  const reader = sharedReader;
  reader.reset(body, start, end);
  try {
    return parseBody(reader);
  } finally {
    // Do not keep the connection's receive buffer alive until the next message.
    reader.reset(EMPTY);
  }
}

function parseBody(reader: MessagePackReader): HubMessage | null {
  let itemCount: number;
  try {
    itemCount = reader.readArrayHeader();
  } catch (error) {
    // .NET reads this header outside its field wrappers
    // (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 `ParseMessage`).
    throw unwrappedError(error);
  }
  const type = readInt32(reader, 'messageType');
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return invocation(reader, type, itemCount);
    case MessageType.StreamItem:
      return streamItem(reader);
    case MessageType.Completion:
      return completion(reader);
    case MessageType.CancelInvocation:
      return cancelInvocation(reader);
    case MessageType.Ping:
      return PING;
    case MessageType.Close:
      return close(reader, itemCount);
    case MessageType.Ack:
      return { type: MessageType.Ack, sequenceId: readSequenceId(reader) };
    case MessageType.Sequence:
      return { type: MessageType.Sequence, sequenceId: readSequenceId(reader) };
    default:
      return null;
  }
}

class MessagePackMessageReader implements HubMessageReader {
  private readonly splitter: LengthPrefixSplitter;
  private onMessage: (message: HubMessage) => void = () => undefined;
  // One handler per reader rather than a closure per push.
  private readonly onBody = (bytes: Buffer, start: number, end: number): void => {
    const message = parseMessagePackMessage(bytes, start, end);
    if (message !== null) this.onMessage(message);
  };

  constructor(options: HubMessageReaderOptions) {
    this.splitter = new LengthPrefixSplitter(options.maximumMessageSize);
  }

  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  push(chunk: Uint8Array, onMessage: (message: HubMessage) => void): void {
    this.onMessage = onMessage;
    this.splitter.push(chunk, this.onBody);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

function writeHeaders(writer: MessagePackWriter, headers: MessageHeaders | undefined): void {
  if (headers === undefined) {
    writer.writeMapHeader(0);
    return;
  }
  const keys = Object.keys(headers);
  writer.writeMapHeader(keys.length);
  for (const key of keys) {
    writer.writeString(key);
    writer.writeString(headers[key]);
  }
}

/**
 * Writes a string, or nil when it is absent or empty: .NET's `string.IsNullOrEmpty` check, which it applies to the
 * Invocation id and the Close error only.
 */
function writeNonEmptyString(writer: MessagePackWriter, value: string | undefined): void {
  if (value) writer.writeString(value);
  else writer.writeNil();
}

/** Writes a string, or nil when it is absent: `MessagePackWriter.Write(string)`, which .NET uses for the other ids. */
function writeNullableString(writer: MessagePackWriter, value: string | undefined): void {
  if (value === undefined || value === null) writer.writeNil();
  else writer.writeString(value);
}

function writeArguments(writer: MessagePackWriter, args: readonly unknown[] | undefined): void {
  if (args === undefined || args === null) {
    writer.writeArrayHeader(0);
    return;
  }
  const count = args.length;
  writer.writeArrayHeader(count);
  for (let i = 0; i < count; i++) writer.writeValue(args[i]);
}

function writeStreamIds(writer: MessagePackWriter, streamIds: readonly string[] | undefined): void {
  if (streamIds === undefined || streamIds === null) {
    writer.writeArrayHeader(0);
    return;
  }
  writer.writeArrayHeader(streamIds.length);
  for (const id of streamIds) writer.writeString(id);
}

/**
 * Writes one message body as .NET's `WriteMessageCore` does
 * (src/SignalR/common/Protocols.MessagePack/src/Protocol/MessagePackHubProtocolWorker.cs@v10.0.0 L425-L610).
 */
export function writeMessagePackBody(writer: MessagePackWriter, message: HubMessage): void {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      // Always 6 items: streamIds is `[]` when there are none.
      writer.writeArrayHeader(6);
      writer.writeSafeInteger(message.type);
      writeHeaders(writer, message.headers);
      if (message.type === MessageType.Invocation) writeNonEmptyString(writer, message.invocationId);
      else writeNullableString(writer, message.invocationId);
      writer.writeString(message.target);
      writeArguments(writer, message.arguments);
      writeStreamIds(writer, message.streamIds);
      return;
    case MessageType.StreamItem:
      writer.writeArrayHeader(4);
      writer.writeSafeInteger(MessageType.StreamItem);
      writeHeaders(writer, message.headers);
      writeNullableString(writer, message.invocationId);
      writer.writeValue(message.item);
      return;
    case MessageType.Completion: {
      // .NET: `Error != null` → error, else `HasResult` → result, else void; only void omits the 5th item.
      const resultKind =
        message.error !== undefined && message.error !== null
          ? ERROR_RESULT
          : hasResult(message)
            ? NON_VOID_RESULT
            : VOID_RESULT;
      writer.writeArrayHeader(resultKind === VOID_RESULT ? 4 : 5);
      writer.writeSafeInteger(MessageType.Completion);
      writeHeaders(writer, message.headers);
      writeNullableString(writer, message.invocationId);
      writer.writeSafeInteger(resultKind);
      if (resultKind === ERROR_RESULT) writer.writeString(message.error as string);
      else if (resultKind === NON_VOID_RESULT) writer.writeValue(message.result);
      return;
    }
    case MessageType.CancelInvocation:
      writer.writeArrayHeader(3);
      writer.writeSafeInteger(MessageType.CancelInvocation);
      writeHeaders(writer, message.headers);
      writeNullableString(writer, message.invocationId);
      return;
    case MessageType.Ping:
      writer.writeArrayHeader(1);
      writer.writeSafeInteger(MessageType.Ping);
      return;
    case MessageType.Close:
      // Always 3 items from .NET: [7, error or nil, allowReconnect] (docs/protocol.md §2.5, §5 item 7).
      writer.writeArrayHeader(3);
      writer.writeSafeInteger(MessageType.Close);
      writeNonEmptyString(writer, message.error);
      writer.writeBoolean(message.allowReconnect === true);
      return;
    case MessageType.Ack:
    case MessageType.Sequence:
      writer.writeArrayHeader(2);
      writer.writeSafeInteger(message.type);
      writer.writeNumber(message.sequenceId);
      return;
    default:
      throw new TypeError(`Unexpected message type: ${(message as { type: unknown }).type}`);
  }
}

/** Up to this many bytes, copying the framed message out is done in JS (measured faster than `Buffer#copy`). */
const SMALL_COPY = 64;
/** Output buffers above this size are dropped after use rather than kept for the next message. */
const MAX_RETAINED_WRITER_SIZE = 1 << 20;
let sharedWriter: MessagePackWriter | null = new MessagePackWriter(4096);

/**
 * Serializes one message with its length prefix into one new Buffer.
 *
 * The body is encoded once into a reused scratch buffer, after {@link MAX_LENGTH_PREFIX_SIZE} reserved bytes; the
 * prefix is then written right in front of the body, and prefix + body are copied out once.
 */
export function writeMessagePackMessage(message: HubMessage): Buffer {
  // Writing a payload can run user code (getters); if that code writes a message too, it gets its own writer.
  const writer = sharedWriter ?? new MessagePackWriter(256);
  sharedWriter = null;
  try {
    writer.reset(MAX_LENGTH_PREFIX_SIZE);
    writeMessagePackBody(writer, message);
    const bodyLength = writer.position - MAX_LENGTH_PREFIX_SIZE;
    const start = MAX_LENGTH_PREFIX_SIZE - lengthPrefixLength(bodyLength);
    writeLengthPrefix(bodyLength, writer.bytes, start);
    const length = writer.position - start;
    const framed = Buffer.allocUnsafe(length);
    if (length <= SMALL_COPY) {
      // Most hub messages are a few dozen bytes; a loop beats the native copy's call overhead there.
      const source = writer.bytes;
      for (let i = 0; i < length; i++) framed[i] = source[start + i];
    } else {
      writer.bytes.copy(framed, 0, start, writer.position);
    }
    return framed;
  } finally {
    sharedWriter = writer.bytes.length > MAX_RETAINED_WRITER_SIZE ? new MessagePackWriter(4096) : writer;
  }
}

/** The `messagepack` hub protocol. */
export class MessagePackHubProtocol implements HubProtocol {
  readonly name = 'messagepack';
  readonly version = MAX_VERSION;
  readonly transferFormat = 'Binary' as const;

  isVersionSupported(version: number): boolean {
    return version <= MAX_VERSION;
  }

  createReader(options: HubMessageReaderOptions): HubMessageReader {
    return new MessagePackMessageReader(options);
  }

  writeMessage(message: HubMessage): Buffer {
    return writeMessagePackMessage(message);
  }
}

/** The shared instance of the MessagePack protocol (it holds no per-connection state). */
export const messagePackHubProtocol = new MessagePackHubProtocol();
