/**
 * The payloads ASP.NET Core's Redis backplane publishes, byte for byte as `RedisProtocol` writes them, so .NET and
 * Node servers can share one Redis.
 *
 * Spec: docs/protocol.md §3.3 (layouts), §3.6 (group commands and acks), §3.7 (client results), §4 (the format is
 * unchanged since 2.2 apart from the .NET 7 client-result additions). .NET file:
 * `src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0`, `GroupAction.cs`.
 *
 * Every payload is a MessagePack array. Readers check only a minimum item count and ignore extra items
 * (`ValidateArraySize`, src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L275-L284), and
 * accept any width of int, str, array and map header, as MessagePack-CSharp does. Writers pick the smallest forms, as
 * MessagePack-CSharp does, so our bytes equal .NET's.
 *
 * Hub messages travel pre-serialized: this module never parses or writes hub protocol bytes. A publishing server
 * frames the message once per hub protocol (JSON text + 0x1E, MessagePack with its VarInt length prefix) and a
 * receiving server writes the bytes for a connection's protocol straight to its transport (docs/protocol.md §3.1).
 */
import { StringTable } from '../messagepack';
import {
  binHeaderLength,
  collectionHeaderLength,
  integerLength,
  putArrayHeader,
  putBin,
  putInteger,
  putMapHeader,
  putStr,
  strLength,
  utf8Length,
} from '../messagepack/writer';
import { MessagePackCursor, RedisProtocolError, checkInteger } from './msgpack-wire';

export { RedisProtocolError };

/** Protocol name → the complete framed hub message in that protocol. Iteration order is wire order. */
export type SerializedHubMessages = ReadonlyMap<string, Uint8Array>;

/**
 * An invocation for the `all`, `group:*`, `user:*` and `connection:*` channels (docs/protocol.md §3.3,
 * src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L35-L90, L170-L203): `[excludedIds[],
 * {protocol: bin}]`, or `[excludedIds[], {protocol: bin}, invocationId, returnChannel]` when the sender waits for a
 * client result (.NET 7+).
 */
export interface RedisInvocation {
  /** Connections the receivers skip (`Clients.Others`, `AllExcept`, `GroupExcept`); empty when none. */
  readonly excludedConnectionIds: readonly string[];
  /**
   * The message framed in every hub protocol a receiving server may need. .NET writes its `SupportedProtocols`
   * order, `json` then `messagepack`; a .NET receiver aborts a connection whose protocol is missing
   * (docs/protocol.md §3.3).
   */
  readonly messages: SerializedHubMessages;
  /** Client results only: the invocation id, also present inside the framed messages. */
  readonly invocationId?: string;
  /**
   * Client results only: the channel the answering server publishes the reply on, **without** the channel prefix
   * (`{hub}:internal:return:{server}`); the answering server adds its own prefix (docs/protocol.md §3.2).
   */
  readonly returnChannel?: string;
}

/** Group actions (`GroupAction.cs`: a byte; 0 is intentionally unused). */
export const RedisGroupAction = {
  Add: 1,
  Remove: 2,
} as const;

/** One of the values of {@link RedisGroupAction}. */
export type RedisGroupAction = (typeof RedisGroupAction)[keyof typeof RedisGroupAction];

/**
 * A remote group add/remove on `{hub}:internal:groups` (docs/protocol.md §3.3, §3.6;
 * src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L92-L121, L205-L219): `[id, serverName,
 * action, groupName, connectionId]`. The server owning `connectionId` performs it and acks.
 */
export interface RedisGroupCommand {
  /** The sender's command counter (Int32, from 1); echoed in the ack. */
  readonly id: number;
  /** The sender's server name, unprefixed: the ack goes to `{hub}:internal:ack:{serverName}`. */
  readonly serverName: string;
  /**
   * {@link RedisGroupAction.Add} or {@link RedisGroupAction.Remove}. A decoded command may carry any byte: .NET
   * casts without checking, and its receiver acts on 1 and 2 only.
   */
  readonly action: RedisGroupAction | number;
  readonly groupName: string;
  readonly connectionId: string;
}

/**
 * A client-result reply on the invoking server's return channel (.NET 7+; docs/protocol.md §3.3, §3.7;
 * src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L146-L168, L264-L273): `[protocolName,
 * bin]`.
 */
export interface RedisCompletion {
  /** The hub protocol of the connection that answered; the receiver parses `completion` with it. */
  readonly protocolName: string;
  /** The Completion message framed in that protocol (JSON with 0x1E; MessagePack with its VarInt prefix). */
  readonly completion: Uint8Array;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const NO_IDS: readonly string[] = Object.freeze([]);
const EMPTY = new Uint8Array(0);

/**
 * Hub protocol names, which every invocation carries: as ready-made str bytes for writing, and as known strings
 * for reading. There are as many as protocols a server registers (two in practice); the caches are bounded all
 * the same, as names also come from the wire.
 */
const MAX_CACHED_NAMES = 16;
const encodedNames = new Map<string, Buffer>();
const knownNames = new StringTable(['json', 'messagepack'], MAX_CACHED_NAMES);

function encodedName(name: string): Buffer {
  let encoded = encodedNames.get(name);
  if (encoded === undefined) {
    const byteLength = utf8Length(name);
    encoded = Buffer.allocUnsafe(strLength(byteLength));
    putStr(encoded, 0, name, byteLength);
    if (encodedNames.size < MAX_CACHED_NAMES) {
      encodedNames.set(name, encoded);
      knownNames.add(name);
    }
  }
  return encoded;
}

// ---------------------------------------------------------------------------------------------------------
// Invocation

/**
 * Writes an invocation as .NET does (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0
 * L35-L90): a 2-item array, or 4 items when `returnChannel` is non-empty (.NET tests `IsNullOrEmpty`); the excluded-ids
 * array is always present (`0x90` when empty); map values are `bin` whatever the protocol, JSON text included. The
 * result is one Buffer sized exactly.
 *
 * @throws TypeError when `returnChannel` is set without an `invocationId` (a reply could not be matched).
 */
export function encodeRedisInvocation(invocation: RedisInvocation): Buffer {
  const { excludedConnectionIds: excluded, messages } = invocation;
  const returnChannel = invocation.returnChannel;
  const expectsReply = returnChannel !== undefined && returnChannel !== '';
  const invocationId = invocation.invocationId;
  if (expectsReply && invocationId === undefined) {
    throw new TypeError('A Redis invocation with a return channel needs an invocation id.');
  }

  // Size everything first, then write into one exact allocation.
  let size = 1 + collectionHeaderLength(excluded.length) + collectionHeaderLength(messages.size);
  for (let i = 0; i < excluded.length; i++) size += strLength(utf8Length(excluded[i]));
  for (const [name, bytes] of messages) size += encodedName(name).length + binHeaderLength(bytes.length) + bytes.length;
  let idLength = 0;
  let channelLength = 0;
  if (expectsReply) {
    idLength = utf8Length(invocationId as string);
    channelLength = utf8Length(returnChannel);
    size += strLength(idLength) + strLength(channelLength);
  }

  const target = Buffer.allocUnsafe(size);
  target[0] = expectsReply ? 0x94 : 0x92;
  let pos = putArrayHeader(target, 1, excluded.length);
  for (let i = 0; i < excluded.length; i++) {
    const id = excluded[i];
    pos = putStr(target, pos, id, utf8Length(id));
  }
  pos = putMapHeader(target, pos, messages.size);
  for (const [name, bytes] of messages) {
    // A name is a few bytes: a loop copies them faster than a call into `copy`/`set`.
    const encoded = encodedName(name);
    for (let i = 0; i < encoded.length; i++) target[pos + i] = encoded[i];
    pos = putBin(target, pos + encoded.length, bytes);
  }
  if (expectsReply) {
    // After the map, so a pre-.NET 7 reader that stops at item 2 still understands the first two items.
    pos = putStr(target, pos, invocationId as string, idLength);
    putStr(target, pos, returnChannel, channelLength);
  }
  return target;
}

/**
 * Reads an invocation (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L170-L203). Needs at
 * least 2 items; items 2–3 (invocation id, return channel) are read only when the array has 4 or more, as .NET does;
 * anything after is ignored.
 *
 * The map values are views of `data`, not copies: a receiving server writes them to its connections as they are.
 * A nil value reads as empty bytes (as in `ReadSerializedHubMessage`), a repeated protocol name keeps its first
 * value (`SerializedHubMessage` looks names up first to last), and nil excluded ids are skipped (they match no
 * connection).
 *
 * @throws {@link RedisProtocolError} on too few items (`Insufficient items in Invocation array.`) or bad data.
 */
export function decodeRedisInvocation(data: Uint8Array): RedisInvocation {
  const reader = new MessagePackCursor(data, 'Invocation');
  const length = reader.readEnvelope(2);

  const idCount = reader.readArrayHeader();
  let excludedConnectionIds = NO_IDS;
  if (idCount > 0) {
    const ids: string[] = [];
    for (let i = 0; i < idCount; i++) {
      const id = reader.readString();
      if (id !== null) ids.push(id);
    }
    excludedConnectionIds = ids;
  }

  const protocolCount = reader.readMapHeader();
  const messages = new Map<string, Uint8Array>();
  for (let i = 0; i < protocolCount; i++) {
    const name = reader.readString(knownNames) ?? '';
    const bytes = reader.readBytes() ?? EMPTY;
    if (!messages.has(name)) messages.set(name, bytes);
  }

  if (length > 3) {
    const invocationId = reader.readString();
    const returnChannel = reader.readString();
    // A nil id or channel is left out: .NET reads it as null.
    return {
      excludedConnectionIds,
      messages,
      ...(invocationId !== null && { invocationId }),
      ...(returnChannel !== null && { returnChannel }),
    };
  }
  return { excludedConnectionIds, messages };
}

// ---------------------------------------------------------------------------------------------------------
// Group command and ack

/**
 * Writes a group command as .NET does (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0
 * L92-L121): 5 items; the id as an Int32 and the action as a byte, both in their smallest int form (a positive fixint
 * for every id below 128 and for both actions).
 *
 * @throws RangeError when `id` is not an Int32 or `action` not a byte.
 */
export function encodeRedisGroupCommand(command: RedisGroupCommand): Buffer {
  const { id, serverName, action, groupName, connectionId } = command;
  checkInteger(id, INT32_MIN, INT32_MAX, 'Group command id');
  checkInteger(action, 0, 0xff, 'Group action');
  const serverLength = utf8Length(serverName);
  const groupLength = utf8Length(groupName);
  const connectionLength = utf8Length(connectionId);
  const size = 1 + integerLength(id) + strLength(serverLength) + integerLength(action);
  const target = Buffer.allocUnsafe(size + strLength(groupLength) + strLength(connectionLength));
  target[0] = 0x95;
  let pos = putInteger(target, 1, id);
  pos = putStr(target, pos, serverName, serverLength);
  pos = putInteger(target, pos, action);
  pos = putStr(target, pos, groupName, groupLength);
  putStr(target, pos, connectionId, connectionLength);
  return target;
}

/**
 * Reads a group command (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L205-L219): at
 * least 5 items. Nil strings read as empty; the action is returned as read (any byte).
 *
 * @throws {@link RedisProtocolError} on too few items (`Insufficient items in GroupCommand array.`) or bad data.
 */
export function decodeRedisGroupCommand(data: Uint8Array): RedisGroupCommand {
  const reader = new MessagePackCursor(data, 'GroupCommand');
  reader.readEnvelope(5);
  const id = reader.readInt32();
  const serverName = reader.readString() ?? '';
  const action = reader.readByte();
  const groupName = reader.readString() ?? '';
  const connectionId = reader.readString() ?? '';
  return { id, serverName, action, groupName, connectionId };
}

/**
 * Writes the ack of group command `id` (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0
 * L123-L144): `[id]`, e.g. `91 01`. It is published on the command sender's `{hub}:internal:ack:{serverName}`.
 *
 * @throws RangeError when `id` is not an Int32.
 */
export function encodeRedisAck(id: number): Buffer {
  checkInteger(id, INT32_MIN, INT32_MAX, 'Ack id');
  const target = Buffer.allocUnsafe(1 + integerLength(id));
  target[0] = 0x91;
  putInteger(target, 1, id);
  return target;
}

/**
 * Reads an ack (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L221-L228): at least 1
 * item, the acknowledged command id.
 *
 * @throws {@link RedisProtocolError} on too few items (`Insufficient items in Ack array.`) or bad data.
 */
export function decodeRedisAck(data: Uint8Array): number {
  const reader = new MessagePackCursor(data, 'Ack');
  reader.readEnvelope(1);
  return reader.readInt32();
}

// ---------------------------------------------------------------------------------------------------------
// Client-result reply

/**
 * Writes a client-result reply (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L146-L168):
 * `[protocolName, bin(completion)]`. It is published on the channel prefix + the return channel carried by the
 * invocation.
 */
export function encodeRedisCompletion(reply: RedisCompletion): Buffer {
  const { protocolName, completion } = reply;
  const nameLength = utf8Length(protocolName);
  const target = Buffer.allocUnsafe(1 + strLength(nameLength) + binHeaderLength(completion.length) + completion.length);
  target[0] = 0x92;
  const pos = putStr(target, 1, protocolName, nameLength);
  putBin(target, pos, completion);
  return target;
}

/**
 * Reads a client-result reply (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L264-L273):
 * at least 2 items. `completion` is a view of `data`; nil reads as empty bytes, as in .NET.
 *
 * @throws {@link RedisProtocolError} on too few items (`Insufficient items in CompletionMessage array.`) or bad data.
 */
export function decodeRedisCompletion(data: Uint8Array): RedisCompletion {
  const reader = new MessagePackCursor(data, 'CompletionMessage');
  reader.readEnvelope(2);
  const protocolName = reader.readString(knownNames) ?? '';
  const completion = reader.readBytes() ?? EMPTY;
  return { protocolName, completion };
}
