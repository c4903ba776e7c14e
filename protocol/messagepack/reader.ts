/**
 * MessagePack reading as MessagePack-CSharp's `MessagePackReader` reads (`src/MessagePack.UnityClient/Assets/Scripts/
 * MessagePack/MessagePackReader.cs` in `MessagePack-CSharp/MessagePack-CSharp`): the same accepted codes, the same
 * "declared count cannot exceed the bytes left" checks, the same error texts (`./format.ts`), and the 500-level
 * depth limit of its `MessagePackSecurity`. Typed reads serve the hub protocol and the Redis backplane field by
 * field; {@link MessagePackReader.readValue} maps any value to JS as `protocol/messagepack/index.ts` describes.
 */
import { ExtData } from '@msgpack/msgpack';
import {
  MAX_DEPTH,
  MessagePackFormatError,
  TIMESTAMP_EXTENSION_TYPE,
  TWO_POW_32,
  endOfStream,
  overflow,
  tooDeep,
  unexpectedCode,
} from './format';

const INT64_MAX = 0x7fff_ffff_ffff_ffffn;

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
    if (code >= 0xcc && code <= 0xd3) return this.integerBody(code);
    throw unexpectedCode(code);
  }

  /**
   * The value of an integer whose code (uint 8 `cc` … int 64 `d3`) has been read: the one place that decodes the
   * eight sized integer forms, for {@link readValue} and the typed integer reads alike.
   */
  private integerBody(code: number): number | bigint {
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
      default:
        return this.i64();
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

  /** Reads any value, mapped to JS as `protocol/messagepack/index.ts` describes. */
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
      case 0xcd:
      case 0xce:
      case 0xcf:
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        return this.integerBody(code);
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
