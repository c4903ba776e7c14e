/**
 * MessagePack values ↔ bytes, with the encoding choices of MessagePack-CSharp (what ASP.NET Core SignalR uses).
 *
 * Spec: docs/protocol.md §2.5 and docs/stack.md §2.4. The output is byte-identical to `@msgpack/msgpack` (the library
 * of the official client) with its default options for every value both can write, which the tests check; it
 * differs where that library cannot match .NET:
 *
 * * `bigint` is written as an integer in its smallest form (int64/uint64 beyond 32 bits), as MessagePack-CSharp
 *   writes a `long`/`ulong`, while numbers keep `@msgpack/msgpack`'s rules (unsigned forms for non-negative
 *   integers, so 5000000000 is `cf …`; non-integers as float64). That library can only do one or the other
 *   (`useBigInt64` also turns numbers over 2^32 into float64).
 * * int64/uint64 values are read as `number` when safe and as `bigint` otherwise, so no value is read lossily.
 * * Reading follows MessagePack-CSharp's `MessagePackReader` (`src/MessagePack.UnityClient/Assets/Scripts/MessagePack/
 *   MessagePackReader.cs` in `MessagePack-CSharp/MessagePack-CSharp`): the same accepted codes, the same
 *   "declared count cannot exceed the bytes left" checks, the same error texts, and the 500-level depth limit of its
 *   `MessagePackSecurity` (`MaximumObjectGraphDepth`).
 * * A JS `Map` is written as a map of its entries and a `Set` as an array (`@msgpack/msgpack` writes both as an
 *   empty map `80`); an `ArrayBuffer` as `bin`; an invalid `Date` as nil, as the JSON protocol writes it as null.
 * * A lone surrogate in a string is written as U+FFFD (`ef bf bd`), as .NET's UTF-8 encoder writes it;
 *   `@msgpack/msgpack` writes its WTF-8 bytes (`ed a0 80`), which are not valid UTF-8.
 *
 * Value mapping: nil ↔ `null` (`undefined` is written as nil), `bin` ↔ `Uint8Array` (read as a copy, so it does
 * not pin the connection's receive buffers), timestamp extension −1 ↔ `Date`, other extensions ↔ `ExtData`, maps
 * ↔ plain objects (keys as strings).
 */
import { ExtData } from '@msgpack/msgpack';

/** Maximum nesting of arrays and maps read or written (MessagePack-CSharp `MessagePackSecurity.MaximumObjectGraphDepth`). */
export const MAX_DEPTH = 500;

/** The MessagePack extension type of timestamps (msgpack spec; MessagePack-CSharp `ReservedMessagePackExtensionTypeCode.DateTime`). */
export const TIMESTAMP_EXTENSION_TYPE = -1;

/**
 * Invalid or truncated MessagePack. The texts are MessagePack-CSharp's: `EndOfStreamException` for missing bytes,
 * `MessagePackSerializationException` for an unexpected code.
 */
export class MessagePackFormatError extends Error {
  override readonly name = 'MessagePackSerializationException';
}

/** .NET's `EndOfStreamException` default text, thrown by `MessagePackReader` when bytes are missing. */
export const END_OF_STREAM = 'Attempted to read past the end of the stream.';

function endOfStream(): MessagePackFormatError {
  return new MessagePackFormatError(END_OF_STREAM);
}

/** MessagePack-CSharp `MessagePackCode.ToFormatName`. */
export function formatName(code: number): string {
  if (code <= 0x7f) return 'positive fixint';
  if (code <= 0x8f) return 'fixmap';
  if (code <= 0x9f) return 'fixarray';
  if (code <= 0xbf) return 'fixstr';
  if (code >= 0xe0) return 'negative fixint';
  return FORMAT_NAMES[code - 0xc0];
}

const FORMAT_NAMES = [
  'nil', '(never used)', 'false', 'true', 'bin 8', 'bin 16', 'bin 32', 'ext 8', 'ext 16', 'ext 32', 'float 32',
  'float 64', 'uint 8', 'uint 16', 'uint 32', 'uint 64', 'int 8', 'int 16', 'int 32', 'int 64', 'fixext 1',
  'fixext 2', 'fixext 4', 'fixext 8', 'fixext 16', 'str 8', 'str 16', 'str 32', 'array 16', 'array 32', 'map 16',
  'map 32',
];

function unexpectedCode(code: number): MessagePackFormatError {
  // MessagePackReader.ThrowInvalidCode.
  return new MessagePackFormatError(`Unexpected msgpack code ${code} (${formatName(code)}) encountered.`);
}

function tooDeep(): MessagePackFormatError {
  // MessagePackSecurity.DepthStep (an InsufficientExecutionStackException in .NET).
  return new MessagePackFormatError(
    `This msgpack sequence has an object graph that exceeds the maximum depth allowed of ${MAX_DEPTH}.`,
  );
}

function overflow(): MessagePackFormatError {
  // A checked integer conversion in .NET (OverflowException).
  return new MessagePackFormatError('Arithmetic operation resulted in an overflow.');
}

const TWO_POW_32 = 0x1_0000_0000;
const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;
const INT64_MAX = 0x7fff_ffff_ffff_ffffn;
const TIMESTAMP64_MAX_SECONDS = 0x4_0000_0000; // 2^34: timestamp 64 holds 34 bits of seconds

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * A few strings read over and over (hub protocol names: every backplane invocation carries them): when the bytes
 * read match one, the existing string is returned instead of decoding a new one. Bounded, as the names come from
 * the wire.
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
  find(data: Uint8Array, start: number, end: number): string | undefined {
    const length = end - start;
    outer: for (const { bytes, value } of this.entries) {
      if (bytes.length !== length) continue;
      for (let i = 0; i < length; i++) if (bytes[i] !== data[start + i]) continue outer;
      return value;
    }
    return undefined;
  }
}

/**
 * Recently read map keys. Objects of one shape repeat their keys in every message; handing out the same string
 * again, already internalized by V8 as a property name, makes building the object several times faster than a
 * fresh string per key (the same idea as @msgpack/msgpack's `CachedKeyDecoder`). A slot holds the last key that
 * hashed to it, so the cache cannot grow and a collision only costs a decode.
 */
const KEY_CACHE_SIZE = 4096;
const MAX_CACHED_KEY_LENGTH = 16;
const keyCache: (string | undefined)[] = new Array<string | undefined>(KEY_CACHE_SIZE).fill(undefined);

/**
 * A cursor over MessagePack bytes, with the typed reads of MessagePack-CSharp's `MessagePackReader` (which the .NET
 * hub protocol uses field by field) and an untyped {@link readValue}.
 */
export class MessagePackReader {
  /** Position of the next byte to read. */
  position: number;
  private bytes: Buffer;
  private end: number;

  /** Reads `bytes[start..end)`; nothing past `end` is ever looked at. */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = toBuffer(bytes);
    this.position = start;
    this.end = end;
  }

  /** Points the reader at new bytes (lets one reader serve many messages without allocating). */
  reset(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.bytes = toBuffer(bytes);
    this.position = start;
    this.end = end;
  }

  /** Bytes left after the cursor. */
  get remaining(): number {
    return this.end - this.position;
  }

  private readByte(): number {
    if (this.position >= this.end) throw endOfStream();
    return this.bytes[this.position++];
  }

  private need(count: number): void {
    if (this.end - this.position < count) throw endOfStream();
  }

  private u16(): number {
    this.need(2);
    const b = this.bytes;
    const p = this.position;
    this.position = p + 2;
    return (b[p] << 8) | b[p + 1];
  }

  private u32(): number {
    this.need(4);
    const b = this.bytes;
    const p = this.position;
    this.position = p + 4;
    return b[p] * 0x100_0000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /**
   * Reads an array header (`MessagePackReader.ReadArrayHeader`): as in .NET, a count larger than the bytes left
   * is an end-of-stream error, since every element takes at least one byte.
   */
  readArrayHeader(): number {
    const code = this.readByte();
    let count: number;
    if (code >= 0x90 && code <= 0x9f) count = code & 0x0f;
    else if (code === 0xdc) count = this.u16();
    else if (code === 0xdd) count = this.u32();
    else throw unexpectedCode(code);
    if (count > this.end - this.position) throw endOfStream();
    return count;
  }

  /** Reads a map header (`ReadMapHeader`); a count needing more than the bytes left (2 per entry) fails. */
  readMapHeader(): number {
    const code = this.readByte();
    let count: number;
    if (code >= 0x80 && code <= 0x8f) count = code & 0x0f;
    else if (code === 0xde) count = this.u16();
    else if (code === 0xdf) count = this.u32();
    else throw unexpectedCode(code);
    if (count * 2 > this.end - this.position) throw endOfStream();
    return count;
  }

  /** Reads `true` or `false` (`ReadBoolean`). */
  readBoolean(): boolean {
    const code = this.readByte();
    if (code === 0xc3) return true;
    if (code === 0xc2) return false;
    throw unexpectedCode(code);
  }

  /**
   * Reads a string, or `null` for nil (`ReadString`). Invalid UTF-8 is replaced with U+FFFD, as .NET does. A string
   * found in `known` is handed out from there instead of being decoded again.
   */
  readString(known?: StringTable): string | null {
    const code = this.readByte();
    let length: number;
    if (code >= 0xa0 && code <= 0xbf) length = code & 0x1f;
    else if (code === 0xc0) return null;
    else if (code === 0xd9) length = this.readByte();
    else if (code === 0xda) length = this.u16();
    else if (code === 0xdb) length = this.u32();
    else throw unexpectedCode(code);
    if (known !== undefined) {
      this.need(length);
      const found = known.find(this.bytes, this.position, this.position + length);
      if (found !== undefined) {
        this.position += length;
        return found;
      }
    }
    return this.utf8(length);
  }

  /**
   * Reads a byte blob, or `null` for nil (`ReadBytes`), as a view of the input — no copy, so it keeps the input
   * alive. Like MessagePack-CSharp it also takes the old spec's raw strings (fixstr, str 16, str 32; not str 8,
   * which that spec lacked).
   */
  readBytes(): Buffer | null {
    const code = this.readByte();
    let length: number;
    if (code === 0xc4) length = this.readByte();
    else if (code === 0xc5 || code === 0xda) length = this.u16();
    else if (code === 0xc6 || code === 0xdb) length = this.u32();
    else if (code >= 0xa0 && code <= 0xbf) length = code & 0x1f;
    else if (code === 0xc0) return null;
    else throw unexpectedCode(code);
    this.need(length);
    const start = this.position;
    this.position = start + length;
    return this.bytes.subarray(start, start + length);
  }

  /** Reads an integer from 0 to 255 (`ReadByte`); other values fail with .NET's overflow error. */
  readUInt8(): number {
    const value = this.readIntegerValue();
    if (typeof value === 'bigint' || value < 0 || value > 0xff) throw overflow();
    return value;
  }

  /**
   * Reads an Int32 (`ReadInt32`): any integer form is accepted, other codes fail, and so (with .NET's overflow
   * error) do values outside the Int32 range.
   */
  readInt32(): number {
    const value = this.readIntegerValue();
    if (typeof value === 'bigint' || value < -0x8000_0000 || value > 0x7fff_ffff) throw overflow();
    return value;
  }

  /** Reads an Int64 (`ReadInt64`), as a number when safe and a bigint otherwise. */
  readInt64(): number | bigint {
    const value = this.readIntegerValue();
    if (typeof value === 'bigint' && value > INT64_MAX) throw overflow();
    return value;
  }

  private readIntegerValue(): number | bigint {
    const code = this.readByte();
    if (code <= 0x7f) return code;
    if (code >= 0xe0) return code - 0x100;
    switch (code) {
      case 0xcc:
        return this.readByte();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.u64();
      case 0xd0:
        return (this.readByte() << 24) >> 24;
      case 0xd1:
        return (this.u16() << 16) >> 16;
      case 0xd2:
        return this.u32() | 0;
      case 0xd3:
        return this.i64();
      default:
        throw unexpectedCode(code);
    }
  }

  private u64(): number | bigint {
    this.need(8);
    const high = this.u32();
    const low = this.u32();
    // Inside the safe range the double is exact; outside it (where rounding cannot bring it back in) only a
    // bigint is.
    const value = high * TWO_POW_32 + low;
    return Number.isSafeInteger(value) ? value : (BigInt(high) << 32n) | BigInt(low);
  }

  private i64(): number | bigint {
    this.need(8);
    const high = this.u32() | 0;
    const low = this.u32();
    const value = high * TWO_POW_32 + low;
    return Number.isSafeInteger(value) ? value : (BigInt(high) << 32n) | BigInt(low);
  }

  private utf8(length: number): string {
    this.need(length);
    const b = this.bytes;
    const start = this.position;
    const end = start + length;
    this.position = end;
    if (length <= 10) {
      // Short ASCII strings (ids, targets, keys) are the common case; up to about 10 bytes, building them here
      // beats the native decoder's call overhead (measured on Node 20).
      let text = '';
      for (let i = start; i < end; i++) {
        const c = b[i];
        if (c > 0x7f) return b.toString('utf8', start, end);
        text += String.fromCharCode(c);
      }
      return text;
    }
    return b.toString('utf8', start, end);
  }

  private binary(length: number): Uint8Array {
    this.need(length);
    const start = this.position;
    this.position = start + length;
    // A copy: a view would keep the whole receive chunk alive for as long as the application keeps the value.
    const b = this.bytes;
    return new Uint8Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + start + length));
  }

  private extension(length: number): unknown {
    const type = (this.readByte() << 24) >> 24;
    this.need(length);
    if (type === TIMESTAMP_EXTENSION_TYPE) return this.timestamp(length);
    return new ExtData(type, this.binary(length));
  }

  /** Timestamp 32/64/96 (msgpack spec; MessagePackReader.ReadDateTime). */
  private timestamp(length: number): Date {
    let seconds: number;
    let nanoseconds: number;
    if (length === 4) {
      seconds = this.u32();
      nanoseconds = 0;
    } else if (length === 8) {
      const high = this.u32();
      const low = this.u32();
      nanoseconds = Math.floor(high / 4);
      seconds = (high & 0x3) * TWO_POW_32 + low;
    } else if (length === 12) {
      nanoseconds = this.u32();
      const high = this.u32() | 0;
      const low = this.u32();
      seconds = high * TWO_POW_32 + low;
    } else {
      throw new MessagePackFormatError(`Length of extension was ${length}. Either 4 or 8 were expected.`);
    }
    // The same arithmetic as @msgpack/msgpack, so both read a timestamp as the same Date (milliseconds).
    return new Date(seconds * 1e3 + nanoseconds / 1e6);
  }

  /** Reads any value, mapped to JS as described in the module comment. */
  readValue(): unknown {
    return this.value(0);
  }

  private value(depth: number): unknown {
    const code = this.readByte();
    if (code <= 0x7f) return code;
    if (code >= 0xe0) return code - 0x100;
    if (code <= 0x8f) return this.map(code & 0x0f, depth);
    if (code <= 0x9f) return this.array(code & 0x0f, depth);
    if (code <= 0xbf) return this.utf8(code & 0x1f);
    switch (code) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.binary(this.readByte());
      case 0xc5:
        return this.binary(this.u16());
      case 0xc6:
        return this.binary(this.u32());
      case 0xc7:
        return this.extension(this.readByte());
      case 0xc8:
        return this.extension(this.u16());
      case 0xc9:
        return this.extension(this.u32());
      case 0xca: {
        this.need(4);
        const v = this.bytes.readFloatBE(this.position);
        this.position += 4;
        return v;
      }
      case 0xcb: {
        this.need(8);
        const v = this.bytes.readDoubleBE(this.position);
        this.position += 8;
        return v;
      }
      case 0xcc:
        return this.readByte();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.u64();
      case 0xd0:
        return (this.readByte() << 24) >> 24;
      case 0xd1:
        return (this.u16() << 16) >> 16;
      case 0xd2:
        return this.u32() | 0;
      case 0xd3:
        return this.i64();
      case 0xd4:
        return this.extension(1);
      case 0xd5:
        return this.extension(2);
      case 0xd6:
        return this.extension(4);
      case 0xd7:
        return this.extension(8);
      case 0xd8:
        return this.extension(16);
      case 0xd9:
        return this.utf8(this.readByte());
      case 0xda:
        return this.utf8(this.u16());
      case 0xdb:
        return this.utf8(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      default:
        // 0xc1, "never used".
        throw unexpectedCode(code);
    }
  }

  private array(count: number, depth: number): unknown[] {
    if (count > this.end - this.position) throw endOfStream();
    if (depth >= MAX_DEPTH) throw tooDeep();
    const items = new Array<unknown>(count);
    for (let i = 0; i < count; i++) items[i] = this.value(depth + 1);
    return items;
  }

  private map(count: number, depth: number): Record<string, unknown> {
    if (count * 2 > this.end - this.position) throw endOfStream();
    if (depth >= MAX_DEPTH) throw tooDeep();
    const map: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      const code = this.position < this.end ? this.bytes[this.position] : -1;
      let key: string;
      if (code >= 0xa0 && code <= 0xbf) {
        this.position++;
        key = this.mapKeyString(code & 0x1f);
      } else {
        key = this.mapKey(depth);
      }
      const value = this.value(depth + 1);
      if (key === '__proto__') {
        // An own property, never the prototype: the bytes come from the network.
        Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        map[key] = value;
      }
    }
    return map;
  }

  /** A fixstr map key, from {@link keyCache} when it is short ASCII. */
  private mapKeyString(length: number): string {
    if (length > MAX_CACHED_KEY_LENGTH || length === 0) return this.utf8(length);
    this.need(length);
    const b = this.bytes;
    const start = this.position;
    const end = start + length;
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ b[i], 0x01000193);
    const slot = hash & (KEY_CACHE_SIZE - 1);
    const cached = keyCache[slot];
    if (cached !== undefined && cached.length === length) {
      let i = 0;
      while (i < length && cached.charCodeAt(i) === b[start + i]) i++;
      if (i === length) {
        this.position = end;
        return cached;
      }
    }
    const key = this.utf8(length);
    // Only ASCII keys are cached: for them one char is one byte, which the comparison above relies on.
    if (key.length === length) keyCache[slot] = key;
    return key;
  }

  private mapKey(depth: number): string {
    const key = this.value(depth + 1);
    if (typeof key === 'string') return key;
    if (typeof key === 'number' || typeof key === 'bigint') return String(key);
    throw new MessagePackFormatError('A map key must be a string or an integer to be read as an object property.');
  }

  /** Skips one value, whatever it is (`MessagePackReader.Skip`). */
  skip(): void {
    this.value(0);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/**
 * A growable output buffer with MessagePack-CSharp's `MessagePackWriter` choices: smallest forms for integers and
 * headers, `str 8` for strings of 32–255 bytes, fixext for extension data of 1/2/4/8/16 bytes.
 */
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
    this.header(count, 0x90, 0xdc);
  }

  /** Writes a map header: fixmap, map 16 or map 32. */
  writeMapHeader(count: number): void {
    this.header(count, 0x80, 0xde);
  }

  private header(count: number, fix: number, code16: number): void {
    this.ensure(5);
    const b = this.bytes;
    const p = this.position;
    if (count < 16) {
      b[p] = fix | count;
      this.position = p + 1;
    } else if (count < 0x1_0000) {
      b[p] = code16;
      b[p + 1] = count >>> 8;
      b[p + 2] = count;
      this.position = p + 3;
    } else {
      b[p] = code16 + 1;
      this.put32(p + 1, count);
      this.position = p + 5;
    }
  }

  private put32(p: number, value: number): void {
    const b = this.bytes;
    b[p] = value >>> 24;
    b[p + 1] = value >>> 16;
    b[p + 2] = value >>> 8;
    b[p + 3] = value;
  }

  /** Writes a number: safe integers in their smallest form (unsigned when ≥ 0), anything else as float64. */
  writeNumber(value: number): void {
    if (Number.isSafeInteger(value)) this.writeSafeInteger(value);
    else this.writeFloat64(value);
  }

  /** Writes a safe integer in its smallest form (MessagePackWriter.Write(long) / Write(ulong)). */
  writeSafeInteger(value: number): void {
    this.ensure(9);
    const b = this.bytes;
    const p = this.position;
    if (value >= 0) {
      if (value < 0x80) {
        b[p] = value;
        this.position = p + 1;
      } else if (value < 0x100) {
        b[p] = 0xcc;
        b[p + 1] = value;
        this.position = p + 2;
      } else if (value < 0x1_0000) {
        b[p] = 0xcd;
        b[p + 1] = value >>> 8;
        b[p + 2] = value;
        this.position = p + 3;
      } else if (value < TWO_POW_32) {
        b[p] = 0xce;
        this.put32(p + 1, value);
        this.position = p + 5;
      } else {
        b[p] = 0xcf;
        this.put32(p + 1, Math.floor(value / TWO_POW_32));
        this.put32(p + 5, value >>> 0);
        this.position = p + 9;
      }
    } else if (value >= -0x20) {
      b[p] = value & 0xff;
      this.position = p + 1;
    } else if (value >= -0x80) {
      b[p] = 0xd0;
      b[p + 1] = value & 0xff;
      this.position = p + 2;
    } else if (value >= -0x8000) {
      b[p] = 0xd1;
      b[p + 1] = value >> 8;
      b[p + 2] = value;
      this.position = p + 3;
    } else if (value >= -0x8000_0000) {
      b[p] = 0xd2;
      this.put32(p + 1, value);
      this.position = p + 5;
    } else {
      b[p] = 0xd3;
      const high = Math.floor(value / TWO_POW_32);
      this.put32(p + 1, high);
      this.put32(p + 5, value - high * TWO_POW_32);
      this.position = p + 9;
    }
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

  /** Writes a string as UTF-8 (lone surrogates become U+FFFD, as .NET's encoder writes them). */
  writeString(value: string): void {
    const length = value.length;
    if (length < 32) {
      // ASCII fast path: one pass, no native call. A fixstr holds up to 31 bytes.
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
    const b = this.bytes;
    const p = this.position;
    let start: number;
    if (byteLength < 32) {
      b[p] = 0xa0 | byteLength;
      start = p + 1;
    } else if (byteLength < 0x100) {
      b[p] = 0xd9;
      b[p + 1] = byteLength;
      start = p + 2;
    } else if (byteLength < 0x1_0000) {
      b[p] = 0xda;
      b[p + 1] = byteLength >>> 8;
      b[p + 2] = byteLength;
      start = p + 3;
    } else {
      b[p] = 0xdb;
      this.put32(p + 1, byteLength);
      start = p + 5;
    }
    this.position = start + b.write(value, start, byteLength, 'utf8');
  }

  /** Writes `bin 8/16/32`. */
  writeBinary(value: Uint8Array): void {
    const length = value.length;
    this.ensure(5 + length);
    const b = this.bytes;
    const p = this.position;
    let start: number;
    if (length < 0x100) {
      b[p] = 0xc4;
      b[p + 1] = length;
      start = p + 2;
    } else if (length < 0x1_0000) {
      b[p] = 0xc5;
      b[p + 1] = length >>> 8;
      b[p + 2] = length;
      start = p + 3;
    } else {
      b[p] = 0xc6;
      this.put32(p + 1, length);
      start = p + 5;
    }
    b.set(value, start);
    this.position = start + length;
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
          this.put32(p, length);
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
        this.put32(p + 2, seconds);
        this.position = p + 6;
      } else {
        // nsec30 | sec34: the top 30 bits are nanoseconds, the low 34 bits seconds.
        b[p] = 0xd7;
        b[p + 1] = 0xff;
        this.put32(p + 2, nanoseconds * 4 + Math.floor(seconds / TWO_POW_32));
        this.put32(p + 6, seconds >>> 0);
        this.position = p + 10;
      }
    } else {
      b[p] = 0xc7;
      b[p + 1] = 12;
      b[p + 2] = 0xff;
      this.put32(p + 3, nanoseconds);
      const high = Math.floor(seconds / TWO_POW_32);
      this.put32(p + 7, high);
      this.put32(p + 11, seconds - high * TWO_POW_32);
      this.position = p + 15;
    }
  }

  /** Writes any JS value, mapped as described in the module comment. Functions and symbols throw a TypeError. */
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
    if (depth >= MAX_DEPTH) throw new RangeError(tooDeep().message);
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

/** Encodes one value into a new Buffer. */
export function encodeMessagePackValue(value: unknown): Buffer {
  const writer = new MessagePackWriter(256);
  writer.writeValue(value);
  return writer.toBuffer();
}

/** Decodes exactly one value; trailing bytes are an error. Throws {@link MessagePackFormatError}. */
export function decodeMessagePackValue(bytes: Uint8Array): unknown {
  const reader = new MessagePackReader(bytes);
  const value = reader.readValue();
  if (reader.remaining !== 0) {
    throw new MessagePackFormatError(`${reader.remaining} byte(s) found after the value.`);
  }
  return value;
}
