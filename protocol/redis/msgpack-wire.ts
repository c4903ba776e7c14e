/**
 * The few MessagePack primitives the Redis backplane payloads use, written and read the way .NET's
 * `MessagePackWriter` / `MessagePackReader` (MessagePack-CSharp, the library `RedisProtocol.cs` writes with)
 * do. Internal to `protocol/redis`: the payload layouts live in `backplane-protocol.ts`.
 *
 * Why not `@msgpack/msgpack`: the payloads are five fixed shapes of arrays, strings, small ints and `bin`
 * blobs. Writing them by hand lets an invocation be sized first and written into one exact Buffer with a
 * single copy of each framed hub message, and lets reading hand out views of the received bytes instead of
 * copies. `bench/redis-backplane-encode.ts` measures both.
 *
 * Writer rules (MessagePack-CSharp `MessagePackWriter.cs` @v2.5.187, the version ASP.NET Core 10 ships, spec §4):
 * every header takes the smallest form that fits — fixarray/array16/array32, fixmap/map16/map32,
 * fixstr/str8/str16/str32 by UTF-8 byte length, bin8/bin16/bin32 — and an int takes the smallest form, unsigned
 * for non-negative values (positive fixint, uint8, uint16, uint32) and signed for negative ones (negative fixint,
 * int8, int16, int32). The golden capture shows exactly these forms (`shared/golden/README.md`, scenario 5).
 *
 * Reader rules (`MessagePackReader.cs` @v2.5.187): any width of a header or int is accepted; a string may be nil;
 * a byte blob may be nil, `bin*`, or (for old-spec compatibility) fixstr/str16/str32, but not str8.
 */

/** Invalid data in a Redis backplane payload — .NET's `InvalidDataException` (RedisProto@v10 L275-L284). */
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
// Reading

/**
 * A few strings read over and over (hub protocol names: every invocation carries them): when the bytes read match
 * one, the existing string is returned instead of decoding a new one. Bounded, as the names come from the wire.
 */
export class StringTable {
  private readonly entries: { readonly bytes: Buffer; readonly value: string }[] = [];

  constructor(
    values: readonly string[],
    private readonly capacity: number,
  ) {
    for (const value of values) this.add(value);
  }

  /** Remembers `value` unless it is known already or the table is full. */
  add(value: string): void {
    if (this.entries.length >= this.capacity || this.entries.some((entry) => entry.value === value)) return;
    this.entries.push({ bytes: Buffer.from(value, 'utf8'), value });
  }

  /** The known string whose UTF-8 bytes are `data[start, end)`, if any. */
  find(data: Buffer, start: number, end: number): string | undefined {
    const length = end - start;
    outer: for (const { bytes, value } of this.entries) {
      if (bytes.length !== length) continue;
      for (let i = 0; i < length; i++) if (bytes[i] !== data[start + i]) continue outer;
      return value;
    }
    return undefined;
  }
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * A cursor over one received payload. Errors name the payload (`messageType`, .NET's names: `Invocation`,
 * `GroupCommand`, `Ack`, `CompletionMessage`) and what was expected.
 */
export class MessagePackCursor {
  private pos = 0;
  private readonly data: Buffer;

  constructor(
    data: Uint8Array,
    private readonly messageType: string,
  ) {
    // A Buffer view over the same memory: its string decoding and big-endian reads, no copy.
    this.data = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }

  private fail(problem: string): never {
    throw new RedisProtocolError(`Invalid ${this.messageType} payload: ${problem} at offset ${this.pos}.`);
  }

  private truncated(): never {
    throw new RedisProtocolError(`Invalid ${this.messageType} payload: unexpected end of data at offset ${this.pos}.`);
  }

  private unexpected(code: number, expected: string): never {
    this.pos--;
    this.fail(`expected ${expected} but found MessagePack code ${hex(code)}`);
  }

  private need(count: number): void {
    if (this.data.length - this.pos < count) this.truncated();
  }

  private code(): number {
    this.need(1);
    return this.data[this.pos++];
  }

  /** Reads the length that follows a 16- or 32-bit header code. */
  private length16(): number {
    this.need(2);
    const value = this.data.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  private length32(): number {
    this.need(4);
    const value = this.data.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  /**
   * Reads an array header of any width. As MessagePack-CSharp's reader, rejects a count larger than the bytes
   * left (every item takes at least one byte), so corrupt data cannot make a caller allocate huge arrays.
   */
  readArrayHeader(): number {
    const code = this.code();
    let count: number;
    if (code >= 0x90 && code <= 0x9f) count = code & 0x0f;
    else if (code === 0xdc) count = this.length16();
    else if (code === 0xdd) count = this.length32();
    else this.unexpected(code, 'an array');
    if (count > this.data.length - this.pos) this.truncated();
    return count;
  }

  /** Reads a map header of any width (a map entry takes at least two bytes). */
  readMapHeader(): number {
    const code = this.code();
    let count: number;
    if (code >= 0x80 && code <= 0x8f) count = code & 0x0f;
    else if (code === 0xde) count = this.length16();
    else if (code === 0xdf) count = this.length32();
    else this.unexpected(code, 'a map');
    if (count * 2 > this.data.length - this.pos) this.truncated();
    return count;
  }

  /**
   * Reads a str of any width, or nil as `null` (as `MessagePackReader.ReadString`). Invalid UTF-8 becomes U+FFFD.
   * A string found in `known` is returned from there rather than decoded again.
   */
  readString(known?: StringTable): string | null {
    const code = this.code();
    let length: number;
    if (code >= 0xa0 && code <= 0xbf) length = code & 0x1f;
    else if (code === 0xd9) {
      this.need(1);
      length = this.data[this.pos++];
    } else if (code === 0xda) length = this.length16();
    else if (code === 0xdb) length = this.length32();
    else if (code === 0xc0) return null;
    else this.unexpected(code, 'a string');
    this.need(length);
    const start = this.pos;
    this.pos += length;
    return known?.find(this.data, start, this.pos) ?? this.data.toString('utf8', start, this.pos);
  }

  /**
   * Reads a byte blob as a view of the payload (no copy), or nil as `null`. Accepts what
   * `MessagePackReader.ReadBytes` accepts: bin8/16/32 and, for old-spec writers, fixstr/str16/str32 (not str8,
   * which the old spec lacked).
   */
  readBytes(): Buffer | null {
    const code = this.code();
    let length: number;
    if (code === 0xc4) {
      this.need(1);
      length = this.data[this.pos++];
    } else if (code === 0xc5 || code === 0xda) length = this.length16();
    else if (code === 0xc6 || code === 0xdb) length = this.length32();
    else if (code >= 0xa0 && code <= 0xbf) length = code & 0x1f;
    else if (code === 0xc0) return null;
    else this.unexpected(code, 'a bin');
    this.need(length);
    const start = this.pos;
    this.pos += length;
    return this.data.subarray(start, this.pos);
  }

  /** Reads an integer of any MessagePack int form; `null` when the code is not an int. */
  private readInteger(): number | null {
    const code = this.code();
    if (code <= 0x7f) return code;
    if (code >= 0xe0) return code - 0x100;
    const data = this.data;
    let value: number;
    switch (code) {
      case 0xcc:
        this.need(1);
        value = data[this.pos];
        this.pos += 1;
        return value;
      case 0xcd:
        this.need(2);
        value = data.readUInt16BE(this.pos);
        this.pos += 2;
        return value;
      case 0xce:
        this.need(4);
        value = data.readUInt32BE(this.pos);
        this.pos += 4;
        return value;
      case 0xcf:
        // Values beyond 2^53 lose precision here, but they are out of every range checked below anyway.
        this.need(8);
        value = data.readUInt32BE(this.pos) * 0x100000000 + data.readUInt32BE(this.pos + 4);
        this.pos += 8;
        return value;
      case 0xd0:
        this.need(1);
        value = data.readInt8(this.pos);
        this.pos += 1;
        return value;
      case 0xd1:
        this.need(2);
        value = data.readInt16BE(this.pos);
        this.pos += 2;
        return value;
      case 0xd2:
        this.need(4);
        value = data.readInt32BE(this.pos);
        this.pos += 4;
        return value;
      case 0xd3:
        this.need(8);
        value = data.readInt32BE(this.pos) * 0x100000000 + data.readUInt32BE(this.pos + 4);
        this.pos += 8;
        return value;
      default:
        this.pos--;
        return null;
    }
  }

  private readIntegerIn(min: number, max: number, typeName: string): number {
    const start = this.pos;
    const value = this.readInteger();
    if (value === null) this.unexpected(this.code(), 'an integer');
    if (value < min || value > max) {
      this.pos = start;
      this.fail(`${value} does not fit in ${typeName}`);
    }
    return value;
  }

  /** Reads any int form holding a value in the Int32 range (`MessagePackReader.ReadInt32`). */
  readInt32(): number {
    return this.readIntegerIn(INT32_MIN, INT32_MAX, 'Int32');
  }

  /** Reads any int form holding a value from 0 to 255 (`MessagePackReader.ReadByte`). */
  readByte(): number {
    return this.readIntegerIn(0, 0xff, 'Byte');
  }

  /**
   * Reads the outer array header and checks it has at least `minimum` items; extra items are left unread, so
   * newer writers can append fields (RedisProto@v10 L275-L284, `ValidateArraySize`, whose text this keeps).
   */
  readEnvelope(minimum: number): number {
    const count = this.readArrayHeader();
    if (count < minimum) throw new RedisProtocolError(`Insufficient items in ${this.messageType} array.`);
    return count;
  }
}
