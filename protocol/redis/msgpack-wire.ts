/**
 * The MessagePack primitives the Redis backplane payloads use, written and read the way .NET's
 * `MessagePackWriter` / `MessagePackReader` (MessagePack-CSharp, the library `RedisProtocol.cs` writes with)
 * do. Internal to `protocol/redis`: the payload layouts live in `backplane-protocol.ts`.
 *
 * Writing: the payloads are a few fixed shapes of arrays, strings, small ints and `bin` blobs, so each write here
 * has a matching size function and an invocation is sized first and written into one exact Buffer, with a single
 * copy of each framed hub message (`bench/redis-backplane-encode.ts` measures it against a growing writer).
 * Reading: the hub protocol's reader (`messagepack-codec.ts`), which hands out views of the received bytes.
 *
 * Writer rules (MessagePack-CSharp `MessagePackWriter.cs` @v2.5.187, the version ASP.NET Core 10 ships,
 * docs/protocol.md §7): every header takes the smallest form that fits — fixarray/array16/array32, fixmap/map16/map32,
 * fixstr/str8/str16/str32 by UTF-8 byte length, bin8/bin16/bin32 — and an int takes the smallest form, unsigned
 * for non-negative values (positive fixint, uint8, uint16, uint32) and signed for negative ones (negative fixint,
 * int8, int16, int32). The golden capture shows exactly these forms (`test/golden/CAPTURE.md`, scenario 5).
 *
 * Reader rules (`MessagePackReader.cs` @v2.5.187): any width of a header or int is accepted; a string may be nil;
 * a byte blob may be nil, `bin*`, or (for old-spec compatibility) fixstr/str16/str32, but not str8.
 */

import { MessagePackFormatError, MessagePackReader, type StringTable } from '../messagepack-codec';

/**
 * Invalid data in a Redis backplane payload — .NET's `InvalidDataException`
 * (src/SignalR/server/StackExchangeRedis/src/Internal/RedisProtocol.cs@v10.0.0 L275-L284).
 */
export class RedisProtocolError extends Error {
  override readonly name = 'InvalidDataException';
}

// ---------------------------------------------------------------------------------------------------------
// Writing: every `write*` takes the target and a position and returns the position after what it wrote. The
// matching `*Length` gives the byte count beforehand, so a payload is sized once and allocated once.

/** Bytes taken by an array or map header for `count` items (fix form up to 15, then 16- and 32-bit). */
export function collectionHeaderLength(count: number): number {
  return count <= 15 ? 1 : count <= 0xffff ? 3 : 5;
}

function writeCollectionHeader(target: Buffer, pos: number, count: number, fix: number, code16: number): number {
  if (count <= 15) {
    target[pos] = fix | count;
    return pos + 1;
  }
  if (count <= 0xffff) {
    target[pos] = code16;
    target.writeUInt16BE(count, pos + 1);
    return pos + 3;
  }
  // The 32-bit code always follows the 16-bit one (array16 0xdc → array32 0xdd, map16 0xde → map32 0xdf).
  target[pos] = code16 + 1;
  target.writeUInt32BE(count, pos + 1);
  return pos + 5;
}

/** Writes an array header: fixarray `0x90|n`, array16 `0xdc`, array32 `0xdd`. */
export function writeArrayHeader(target: Buffer, pos: number, count: number): number {
  return writeCollectionHeader(target, pos, count, 0x90, 0xdc);
}

/** Writes a map header: fixmap `0x80|n`, map16 `0xde`, map32 `0xdf`. */
export function writeMapHeader(target: Buffer, pos: number, count: number): number {
  return writeCollectionHeader(target, pos, count, 0x80, 0xde);
}

/** Bytes taken by a str header for a string of `byteLength` UTF-8 bytes. */
export function strHeaderLength(byteLength: number): number {
  return byteLength <= 31 ? 1 : byteLength <= 0xff ? 2 : byteLength <= 0xffff ? 3 : 5;
}

/** Bytes taken by a bin header for `byteLength` bytes (no fix form exists for bin). */
export function binHeaderLength(byteLength: number): number {
  return byteLength <= 0xff ? 2 : byteLength <= 0xffff ? 3 : 5;
}

/**
 * UTF-8 byte length of `value`. Ids and names are short ASCII in practice: a JS scan of a short string is
 * cheaper than the call into `Buffer.byteLength`, and it tells the writer it may copy char codes directly.
 */
export function utf8Length(value: string): number {
  const length = value.length;
  if (length <= 64) {
    let i = 0;
    while (i < length && value.charCodeAt(i) < 0x80) i++;
    if (i === length) return length;
  }
  return Buffer.byteLength(value, 'utf8');
}

/** Bytes taken by `value` written as a MessagePack str whose UTF-8 length is `byteLength`. */
export function strLength(byteLength: number): number {
  return strHeaderLength(byteLength) + byteLength;
}

/** Writes `value` as a str; `byteLength` must be its {@link utf8Length}. */
export function writeStr(target: Buffer, pos: number, value: string, byteLength: number): number {
  if (byteLength <= 31) {
    target[pos++] = 0xa0 | byteLength;
  } else if (byteLength <= 0xff) {
    target[pos] = 0xd9;
    target[pos + 1] = byteLength;
    pos += 2;
  } else if (byteLength <= 0xffff) {
    target[pos] = 0xda;
    target.writeUInt16BE(byteLength, pos + 1);
    pos += 3;
  } else {
    target[pos] = 0xdb;
    target.writeUInt32BE(byteLength, pos + 1);
    pos += 5;
  }
  if (byteLength === value.length && byteLength <= 64) {
    // All ASCII (a UTF-8 length equal to the UTF-16 length means no char needed more than one byte).
    for (let i = 0; i < byteLength; i++) target[pos + i] = value.charCodeAt(i);
  } else {
    target.write(value, pos, byteLength, 'utf8');
  }
  return pos + byteLength;
}

/** Writes a bin header (`0xc4` bin8, `0xc5` bin16, `0xc6` bin32) followed by `bytes`. */
export function writeBin(target: Buffer, pos: number, bytes: Uint8Array): number {
  const length = bytes.length;
  if (length <= 0xff) {
    target[pos] = 0xc4;
    target[pos + 1] = length;
    pos += 2;
  } else if (length <= 0xffff) {
    target[pos] = 0xc5;
    target.writeUInt16BE(length, pos + 1);
    pos += 3;
  } else {
    target[pos] = 0xc6;
    target.writeUInt32BE(length, pos + 1);
    pos += 5;
  }
  target.set(bytes, pos);
  return pos + length;
}

/** Bytes taken by an Int32 written in its smallest form. */
export function int32Length(value: number): number {
  if (value >= 0) return value <= 0x7f ? 1 : value <= 0xff ? 2 : value <= 0xffff ? 3 : 5;
  return value >= -32 ? 1 : value >= -0x80 ? 2 : value >= -0x8000 ? 3 : 5;
}

/**
 * Writes an Int32 in its smallest form: positive fixint, uint8 `0xcc`, uint16 `0xcd`, uint32 `0xce` for
 * non-negative values; negative fixint, int8 `0xd0`, int16 `0xd1`, int32 `0xd2` for negative ones.
 */
export function writeInt32(target: Buffer, pos: number, value: number): number {
  if (value >= 0) {
    if (value <= 0x7f) {
      target[pos] = value;
      return pos + 1;
    }
    if (value <= 0xff) {
      target[pos] = 0xcc;
      target[pos + 1] = value;
      return pos + 2;
    }
    if (value <= 0xffff) {
      target[pos] = 0xcd;
      target.writeUInt16BE(value, pos + 1);
      return pos + 3;
    }
    target[pos] = 0xce;
    target.writeUInt32BE(value, pos + 1);
    return pos + 5;
  }
  if (value >= -32) {
    target[pos] = value & 0xff;
    return pos + 1;
  }
  if (value >= -0x80) {
    target[pos] = 0xd0;
    target.writeInt8(value, pos + 1);
    return pos + 2;
  }
  if (value >= -0x8000) {
    target[pos] = 0xd1;
    target.writeInt16BE(value, pos + 1);
    return pos + 3;
  }
  target[pos] = 0xd2;
  target.writeInt32BE(value, pos + 1);
  return pos + 5;
}

/** Throws unless `value` is an integer .NET can hold in the named field's type. */
export function checkInteger(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${field} must be an integer from ${min} to ${max}; got ${value}.`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading: the hub protocol's MessagePack reader (MessagePack-CSharp's reading rules, `messagepack-codec.ts`), with
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
