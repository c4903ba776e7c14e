/**
 * MessagePack writing with MessagePack-CSharp's `MessagePackWriter` choices (docs/protocol.md §2.5, §4): every
 * header and integer in its smallest form, unsigned forms for non-negative integers, `str 8` for strings of 32–255
 * bytes, fixext for extension data of 1/2/4/8/16 bytes.
 *
 * Two layers share one set of forms:
 *
 * * the `put*` functions write one header or scalar at a position of a Buffer the caller has sized and return the
 *   position after it; each has a matching `*Length`, so a payload of known shape (the Redis backplane's, in
 *   `protocol/redis/backplane-protocol.ts`) is sized first and written into one exact Buffer;
 * * {@link MessagePackWriter} grows its own Buffer and writes any JS value with them (the hub protocol's bodies).
 */
import { ExtData } from '@msgpack/msgpack';
import { MAX_DEPTH, TOO_DEEP, TWO_POW_32 } from './format';

const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;
const TIMESTAMP64_MAX_SECONDS = 0x4_0000_0000; // 2^34: timestamp 64 holds 34 bits of seconds

// ---------------------------------------------------------------------------------------------------------
// Forms at a position: the target must have room (the matching `*Length` says how much).

function put32(target: Buffer, pos: number, value: number): void {
  target[pos] = value >>> 24;
  target[pos + 1] = value >>> 16;
  target[pos + 2] = value >>> 8;
  target[pos + 3] = value;
}

/** Bytes taken by an array or map header for `count` items (fix form up to 15, then 16- and 32-bit). */
export function collectionHeaderLength(count: number): number {
  return count <= 15 ? 1 : count <= 0xffff ? 3 : 5;
}

function putCollectionHeader(target: Buffer, pos: number, count: number, fix: number, code16: number): number {
  if (count <= 15) {
    target[pos] = fix | count;
    return pos + 1;
  }
  if (count <= 0xffff) {
    target[pos] = code16;
    target[pos + 1] = count >>> 8;
    target[pos + 2] = count;
    return pos + 3;
  }
  // The 32-bit code always follows the 16-bit one (array16 0xdc → array32 0xdd, map16 0xde → map32 0xdf).
  target[pos] = code16 + 1;
  put32(target, pos + 1, count);
  return pos + 5;
}

/** Writes an array header: fixarray `0x90|n`, array16 `0xdc`, array32 `0xdd`. */
export function putArrayHeader(target: Buffer, pos: number, count: number): number {
  return putCollectionHeader(target, pos, count, 0x90, 0xdc);
}

/** Writes a map header: fixmap `0x80|n`, map16 `0xde`, map32 `0xdf`. */
export function putMapHeader(target: Buffer, pos: number, count: number): number {
  return putCollectionHeader(target, pos, count, 0x80, 0xde);
}

/** Bytes taken by a str header for a string of `byteLength` UTF-8 bytes. */
export function strHeaderLength(byteLength: number): number {
  return byteLength <= 31 ? 1 : byteLength <= 0xff ? 2 : byteLength <= 0xffff ? 3 : 5;
}

/** Bytes taken by a string written as a str whose UTF-8 length is `byteLength`. */
export function strLength(byteLength: number): number {
  return strHeaderLength(byteLength) + byteLength;
}

/**
 * UTF-8 byte length of `value`. Ids and names are short ASCII in practice: a JS scan of a short string is
 * cheaper than the call into `Buffer.byteLength`, and it tells {@link putStr} it may copy char codes directly.
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

/**
 * Writes `value` as a str (fixstr, str 8, str 16, str 32 by UTF-8 length); `byteLength` must be its
 * {@link utf8Length}. A lone surrogate becomes U+FFFD (`ef bf bd`), as .NET's UTF-8 encoder writes it.
 */
export function putStr(target: Buffer, pos: number, value: string, byteLength: number): number {
  if (byteLength <= 31) {
    target[pos++] = 0xa0 | byteLength;
  } else if (byteLength <= 0xff) {
    target[pos] = 0xd9;
    target[pos + 1] = byteLength;
    pos += 2;
  } else if (byteLength <= 0xffff) {
    target[pos] = 0xda;
    target[pos + 1] = byteLength >>> 8;
    target[pos + 2] = byteLength;
    pos += 3;
  } else {
    target[pos] = 0xdb;
    put32(target, pos + 1, byteLength);
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

/** Bytes taken by a bin header for `byteLength` bytes (no fix form exists for bin). */
export function binHeaderLength(byteLength: number): number {
  return byteLength <= 0xff ? 2 : byteLength <= 0xffff ? 3 : 5;
}

/** Writes a bin header (`0xc4` bin8, `0xc5` bin16, `0xc6` bin32) followed by `bytes`. */
export function putBin(target: Buffer, pos: number, bytes: Uint8Array): number {
  const length = bytes.length;
  if (length <= 0xff) {
    target[pos] = 0xc4;
    target[pos + 1] = length;
    pos += 2;
  } else if (length <= 0xffff) {
    target[pos] = 0xc5;
    target[pos + 1] = length >>> 8;
    target[pos + 2] = length;
    pos += 3;
  } else {
    target[pos] = 0xc6;
    put32(target, pos + 1, length);
    pos += 5;
  }
  target.set(bytes, pos);
  return pos + length;
}

/** Bytes taken by a safe integer written in its smallest form. */
export function integerLength(value: number): number {
  if (value >= 0) return value <= 0x7f ? 1 : value <= 0xff ? 2 : value <= 0xffff ? 3 : value < TWO_POW_32 ? 5 : 9;
  return value >= -32 ? 1 : value >= -0x80 ? 2 : value >= -0x8000 ? 3 : value >= -0x8000_0000 ? 5 : 9;
}

/**
 * Writes a safe integer in its smallest form (`MessagePackWriter.Write(long)` / `Write(ulong)`): positive fixint,
 * uint8 `0xcc`, uint16 `0xcd`, uint32 `0xce`, uint64 `0xcf` for non-negative values; negative fixint, int8 `0xd0`,
 * int16 `0xd1`, int32 `0xd2`, int64 `0xd3` for negative ones.
 */
export function putInteger(target: Buffer, pos: number, value: number): number {
  if (value >= 0) {
    if (value < 0x80) {
      target[pos] = value;
      return pos + 1;
    }
    if (value < 0x100) {
      target[pos] = 0xcc;
      target[pos + 1] = value;
      return pos + 2;
    }
    if (value < 0x1_0000) {
      target[pos] = 0xcd;
      target[pos + 1] = value >>> 8;
      target[pos + 2] = value;
      return pos + 3;
    }
    if (value < TWO_POW_32) {
      target[pos] = 0xce;
      put32(target, pos + 1, value);
      return pos + 5;
    }
    target[pos] = 0xcf;
    put32(target, pos + 1, Math.floor(value / TWO_POW_32));
    put32(target, pos + 5, value >>> 0);
    return pos + 9;
  }
  if (value >= -0x20) {
    target[pos] = value & 0xff;
    return pos + 1;
  }
  if (value >= -0x80) {
    target[pos] = 0xd0;
    target[pos + 1] = value & 0xff;
    return pos + 2;
  }
  if (value >= -0x8000) {
    target[pos] = 0xd1;
    target[pos + 1] = value >> 8;
    target[pos + 2] = value;
    return pos + 3;
  }
  if (value >= -0x8000_0000) {
    target[pos] = 0xd2;
    put32(target, pos + 1, value);
    return pos + 5;
  }
  target[pos] = 0xd3;
  const high = Math.floor(value / TWO_POW_32);
  put32(target, pos + 1, high);
  put32(target, pos + 5, value - high * TWO_POW_32);
  return pos + 9;
}

// ---------------------------------------------------------------------------------------------------------
// A growable writer of any value.

/** A growable output buffer that writes MessagePack values with the forms above. */
export class MessagePackWriter {
  /** Output so far: `bytes[0..position)`. */
  bytes: Buffer;
  /** Where the next byte goes. */
  position = 0;

  /** @param initialSize First size of the output buffer; it doubles as needed. */
  constructor(initialSize = 2048) {
    this.bytes = Buffer.allocUnsafe(initialSize);
  }

  /** Forgets the output and continues writing at `position`; bytes before it are the caller's to fill. */
  reset(position = 0): void {
    this.position = position;
  }

  /** Makes room for `count` more bytes. */
  ensure(count: number): void {
    const needed = this.position + count;
    if (needed <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.position);
    this.bytes = grown;
  }

  /** A copy of the output. */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.position);
    this.bytes.copy(out, 0, 0, this.position);
    return out;
  }

  /** Writes nil (`c0`). */
  writeNil(): void {
    this.ensure(1);
    this.bytes[this.position++] = 0xc0;
  }

  /** Writes `c3` or `c2`. */
  writeBoolean(value: boolean): void {
    this.ensure(1);
    this.bytes[this.position++] = value ? 0xc3 : 0xc2;
  }

  /** Writes an array header: fixarray, array 16 or array 32. */
  writeArrayHeader(count: number): void {
    this.ensure(5);
    this.position = putArrayHeader(this.bytes, this.position, count);
  }

  /** Writes a map header: fixmap, map 16 or map 32. */
  writeMapHeader(count: number): void {
    this.ensure(5);
    this.position = putMapHeader(this.bytes, this.position, count);
  }

  /** Writes a number: safe integers in their smallest form (unsigned when ≥ 0), anything else as float64. */
  writeNumber(value: number): void {
    if (Number.isSafeInteger(value)) this.writeSafeInteger(value);
    else this.writeFloat64(value);
  }

  /** Writes a safe integer in its smallest form ({@link putInteger}). */
  writeSafeInteger(value: number): void {
    this.ensure(9);
    this.position = putInteger(this.bytes, this.position, value);
  }

  /** Writes a bigint as an integer in its smallest form; outside the int64/uint64 range it throws a RangeError. */
  writeBigInt(value: bigint): void {
    if (value >= -0x8000_0000n && value < 0x1_0000_0000n) {
      this.writeSafeInteger(Number(value));
      return;
    }
    if (value > UINT64_MAX || value < INT64_MIN) {
      throw new RangeError(`${value} is outside the range of a MessagePack integer (int64/uint64).`);
    }
    this.ensure(9);
    this.bytes[this.position] = value >= 0n ? 0xcf : 0xd3;
    if (value >= 0n) this.bytes.writeBigUInt64BE(value, this.position + 1);
    else this.bytes.writeBigInt64BE(value, this.position + 1);
    this.position += 9;
  }

  /** Writes float64 (`cb`), as MessagePack-CSharp writes a `double`. */
  writeFloat64(value: number): void {
    this.ensure(9);
    this.bytes[this.position] = 0xcb;
    this.bytes.writeDoubleBE(value, this.position + 1);
    this.position += 9;
  }

  /** Writes a string as UTF-8 ({@link putStr}). */
  writeString(value: string): void {
    const length = value.length;
    if (length < 32) {
      // ASCII fast path: one pass that measures and copies, no native call. A fixstr holds up to 31 bytes.
      this.ensure(1 + length * 3);
      const b = this.bytes;
      let p = this.position + 1;
      let i = 0;
      for (; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c > 0x7f) break;
        b[p++] = c;
      }
      if (i === length) {
        b[this.position] = 0xa0 | length;
        this.position = p;
        return;
      }
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    this.ensure(5 + byteLength);
    this.position = putStr(this.bytes, this.position, value, byteLength);
  }

  /** Writes `bin 8/16/32`. */
  writeBinary(value: Uint8Array): void {
    this.ensure(5 + value.length);
    this.position = putBin(this.bytes, this.position, value);
  }

  /** Writes an extension value with the smallest header (MessagePackWriter.WriteExtensionFormatHeader). */
  writeExtension(type: number, data: Uint8Array): void {
    const length = data.length;
    this.ensure(6 + length);
    const b = this.bytes;
    let p = this.position;
    switch (length) {
      case 1:
        b[p++] = 0xd4;
        break;
      case 2:
        b[p++] = 0xd5;
        break;
      case 4:
        b[p++] = 0xd6;
        break;
      case 8:
        b[p++] = 0xd7;
        break;
      case 16:
        b[p++] = 0xd8;
        break;
      default:
        if (length < 0x100) {
          b[p++] = 0xc7;
          b[p++] = length;
        } else if (length < 0x1_0000) {
          b[p++] = 0xc8;
          b[p++] = length >>> 8;
          b[p++] = length;
        } else {
          b[p++] = 0xc9;
          put32(b, p, length);
          p += 4;
        }
    }
    b[p++] = type & 0xff;
    b.set(data, p);
    this.position = p + length;
  }

  /**
   * Writes a Date as timestamp extension −1 in the smallest of the three forms (MessagePackWriter.Write(DateTime)):
   * 32-bit for whole seconds in [0, 2^32), 64-bit for seconds in [0, 2^34), 96-bit otherwise. An invalid Date
   * is written as nil.
   */
  writeDate(value: Date): void {
    const time = value.getTime();
    if (Number.isNaN(time)) {
      this.writeNil();
      return;
    }
    const seconds = Math.floor(time / 1e3);
    const nanoseconds = (time - seconds * 1e3) * 1e6;
    this.ensure(15);
    const b = this.bytes;
    const p = this.position;
    if (seconds >= 0 && seconds < TIMESTAMP64_MAX_SECONDS) {
      if (nanoseconds === 0 && seconds < TWO_POW_32) {
        b[p] = 0xd6;
        b[p + 1] = 0xff;
        put32(b, p + 2, seconds);
        this.position = p + 6;
      } else {
        // nsec30 | sec34: the top 30 bits are nanoseconds, the low 34 bits seconds.
        b[p] = 0xd7;
        b[p + 1] = 0xff;
        put32(b, p + 2, nanoseconds * 4 + Math.floor(seconds / TWO_POW_32));
        put32(b, p + 6, seconds >>> 0);
        this.position = p + 10;
      }
    } else {
      b[p] = 0xc7;
      b[p + 1] = 12;
      b[p + 2] = 0xff;
      put32(b, p + 3, nanoseconds);
      const high = Math.floor(seconds / TWO_POW_32);
      put32(b, p + 7, high);
      put32(b, p + 11, seconds - high * TWO_POW_32);
      this.position = p + 15;
    }
  }

  /**
   * Writes any JS value, mapped as `protocol/messagepack/index.ts` describes. Functions and symbols throw a
   * TypeError; a graph nested deeper than {@link MAX_DEPTH} throws a RangeError.
   */
  writeValue(value: unknown): void {
    this.value(value, 0);
  }

  private value(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        this.writeString(value);
        return;
      case 'number':
        if (Number.isSafeInteger(value)) this.writeSafeInteger(value);
        else this.writeFloat64(value);
        return;
      case 'boolean':
        this.writeBoolean(value);
        return;
      case 'undefined':
        this.writeNil();
        return;
      case 'bigint':
        this.writeBigInt(value);
        return;
      case 'object':
        if (value === null) this.writeNil();
        else this.object(value, depth);
        return;
      default:
        throw new TypeError(`A ${typeof value} cannot be written as MessagePack.`);
    }
  }

  private object(value: object, depth: number): void {
    if (depth >= MAX_DEPTH) throw new RangeError(TOO_DEEP);
    if (Array.isArray(value)) {
      const length = value.length;
      this.writeArrayHeader(length);
      for (let i = 0; i < length; i++) this.value(value[i], depth + 1);
    } else if (ArrayBuffer.isView(value)) {
      // isView, not instanceof: it also recognises Buffers and typed arrays of another realm (vm contexts).
      this.writeBinary(
        value instanceof Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
      );
    } else if (value instanceof Date) {
      this.writeDate(value);
    } else if (value instanceof ArrayBuffer) {
      this.writeBinary(new Uint8Array(value));
    } else if (value instanceof ExtData) {
      const data = typeof value.data === 'function' ? value.data(this.position) : value.data;
      this.writeExtension(value.type, data);
    } else if (value instanceof Map) {
      this.writeMapHeader(value.size);
      for (const [k, v] of value) {
        this.value(k, depth + 1);
        this.value(v, depth + 1);
      }
    } else if (value instanceof Set) {
      this.writeArrayHeader(value.size);
      for (const item of value) this.value(item, depth + 1);
    } else {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      const count = keys.length;
      this.writeMapHeader(count);
      for (let i = 0; i < count; i++) {
        const key = keys[i];
        this.writeString(key);
        this.value(record[key], depth + 1);
      }
    }
  }
}
