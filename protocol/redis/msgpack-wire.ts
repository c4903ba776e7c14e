/**
 * The MessagePack side of the Redis backplane payloads that is the backplane's own: reading with its errors, and
 * the integer checks of its fields. Internal to `protocol/redis`: the payload layouts live in
 * `backplane-protocol.ts`.
 *
 * Both directions use the hub protocol's codec (`protocol/messagepack`), since `RedisProtocol.cs` writes and reads
 * with the same MessagePack-CSharp `MessagePackWriter` / `MessagePackReader` (@v2.5.187, the version ASP.NET Core 10
 * ships, docs/protocol.md §4) as the hub protocol does:
 *
 * * Writing: the payloads are a few fixed shapes of arrays, strings, small ints and `bin` blobs, so an invocation
 *   is sized first with the `*Length` functions of `protocol/messagepack/writer.ts` and written into one exact Buffer
 *   with its `put*` forms, with a single copy of each framed hub message (`bench/redis-backplane-encode.ts`
 *   measures it against a growing writer). Every header and int takes the smallest form that fits, unsigned for
 *   non-negative ints; the golden capture shows exactly these forms (`test/golden/CAPTURE.md`, scenario 5).
 * * Reading: {@link MessagePackReader}, which hands out views of the received bytes. Any width of a header or int
 *   is accepted; a string may be nil; a byte blob may be nil, `bin*`, or (for old-spec compatibility)
 *   fixstr/str16/str32, but not str8.
 */

import { MessagePackFormatError, MessagePackReader, type StringTable } from '../messagepack';

/**
 * Invalid data in a Redis backplane payload — .NET's `InvalidDataException`
 * (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L275-L284).
 */
export class RedisProtocolError extends Error {
  override readonly name = 'InvalidDataException';
}

/** Throws unless `value` is an integer .NET can hold in the named field's type. */
export function checkInteger(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${field} must be an integer from ${min} to ${max}; got ${value}.`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading: the hub protocol's MessagePack reader (MessagePack-CSharp's reading rules, `protocol/messagepack`), with
// its errors turned into the backplane's and placed in the payload.

/**
 * A cursor over one received payload. Errors are {@link RedisProtocolError}s naming the payload (`messageType`,
 * .NET's names: `Invocation`, `GroupCommand`, `Ack`, `CompletionMessage`) and the offset of the value that failed.
 */
export class MessagePackCursor {
  private readonly reader: MessagePackReader;

  constructor(
    data: Uint8Array,
    private readonly messageType: string,
  ) {
    this.reader = new MessagePackReader(data);
  }

  /** Runs one read; invalid data becomes the backplane's error, placed at the value that failed. */
  private read<T>(read: (reader: MessagePackReader) => T): T {
    const at = this.reader.position;
    try {
      return read(this.reader);
    } catch (error) {
      if (!(error instanceof MessagePackFormatError)) throw error;
      throw new RedisProtocolError(`Invalid ${this.messageType} payload at offset ${at}: ${error.message}`);
    }
  }

  /** An array header of any width (`ReadArrayHeader`). */
  readArrayHeader(): number {
    return this.read(readArrayHeader);
  }

  /** A map header of any width (`ReadMapHeader`). */
  readMapHeader(): number {
    return this.read(readMapHeader);
  }

  /** A str of any width, or nil as `null` (`ReadString`); a string found in `known` comes from there. */
  readString(known?: StringTable): string | null {
    return known === undefined ? this.read(readString) : this.read((reader) => reader.readString(known));
  }

  /** A byte blob as a view of the payload, or nil as `null` (`ReadBytes`: bin, or the old spec's raw str). */
  readBytes(): Buffer | null {
    return this.read(readBytes);
  }

  /** Any int form holding an Int32 (`ReadInt32`). */
  readInt32(): number {
    return this.read(readInt32);
  }

  /** Any int form holding a value from 0 to 255 (`ReadByte`). */
  readByte(): number {
    return this.read(readUInt8);
  }

  /**
   * Reads the outer array header and checks it has at least `minimum` items; extra items are left unread, so
   * newer writers can append fields (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0
   * L275-L284, `ValidateArraySize`, whose text this keeps).
   */
  readEnvelope(minimum: number): number {
    const count = this.readArrayHeader();
    if (count < minimum) throw new RedisProtocolError(`Insufficient items in ${this.messageType} array.`);
    return count;
  }
}

// The reads, made once rather than as a closure per call.
const readArrayHeader = (reader: MessagePackReader) => reader.readArrayHeader();
const readMapHeader = (reader: MessagePackReader) => reader.readMapHeader();
const readString = (reader: MessagePackReader) => reader.readString();
const readBytes = (reader: MessagePackReader) => reader.readBytes();
const readInt32 = (reader: MessagePackReader) => reader.readInt32();
const readUInt8 = (reader: MessagePackReader) => reader.readUInt8();
