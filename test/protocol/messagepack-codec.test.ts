/**
 * MessagePack values: the encoding choices of MessagePack-CSharp (docs/protocol.md §2.5, docs/stack.md §2.4),
 * byte-identical to
 * @msgpack/msgpack (the official client's library) wherever that library can express the value.
 */
import { ExtData, decode as libDecode, encode as libEncode } from '@msgpack/msgpack';
import {
  MAX_DEPTH,
  MessagePackFormatError,
  MessagePackReader,
  decodeMessagePackValue,
  encodeMessagePackValue,
} from '../../protocol';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Value → exact bytes (hex) → the same value back. */
function roundTrip(value: unknown, expectedHex: string, decoded: unknown = value): void {
  const bytes = encodeMessagePackValue(value);
  expect(hex(bytes)).toBe(expectedHex.replace(/\s+/g, ''));
  expect(decodeMessagePackValue(bytes)).toEqual(decoded);
}

describe('strings', () => {
  it.each([
    ['', 'a0'],
    ['hi', 'a26869'],
    ['x'.repeat(31), 'bf' + '78'.repeat(31)],
    ['x'.repeat(32), 'd920' + '78'.repeat(32)],
    ['x'.repeat(255), 'd9ff' + '78'.repeat(255)],
    ['x'.repeat(256), 'da0100' + '78'.repeat(256)],
    ['é', 'a2c3a9'],
    ['€'.repeat(11), 'd921' + 'e282ac'.repeat(11)],
    ['😀', 'a4f09f9880'],
  ])('%j', (value, expected) => roundTrip(value, expected));

  it('uses str 32 from 65536 bytes', () => {
    const value = 'y'.repeat(0x10000);
    const bytes = encodeMessagePackValue(value);
    expect(hex(bytes.subarray(0, 5))).toBe('db00010000');
    expect(decodeMessagePackValue(bytes)).toBe(value);
  });

  it('writes a lone surrogate as U+FFFD, as .NET does', () => {
    expect(hex(encodeMessagePackValue('a\ud800'))).toBe('a461efbfbd');
    expect(hex(encodeMessagePackValue('\ud800'.repeat(40)).subarray(0, 5))).toBe('d978efbfbd');
  });

  it('reads invalid UTF-8 with replacement characters', () => {
    expect(decodeMessagePackValue(fromHex('a2 61ff'))).toBe('a\ufffd');
  });
});

describe('numbers', () => {
  it.each([
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, 'cc80'],
    [255, 'ccff'],
    [256, 'cd0100'],
    [65535, 'cdffff'],
    [65536, 'ce00010000'],
    [0xffffffff, 'ceffffffff'],
    [0x100000000, 'cf0000000100000000'],
    [5000000000, 'cf000000012a05f200'],
    [Number.MAX_SAFE_INTEGER, 'cf001fffffffffffff'],
    [-1, 'ff'],
    [-32, 'e0'],
    [-33, 'd0df'],
    [-128, 'd080'],
    [-129, 'd1ff7f'],
    [-32768, 'd18000'],
    [-32769, 'd2ffff7fff'],
    [-2147483648, 'd280000000'],
    [-2147483649, 'd3ffffffff7fffffff'],
    [-5000000000, 'd3fffffffed5fa0e00'],
    [Number.MIN_SAFE_INTEGER, 'd3ffe0000000000001'],
    [3.5, 'cb400c000000000000'],
    [-0.25, 'cbbfd0000000000000'],
    [2 ** 53, 'cb4340000000000000'],
    [Infinity, 'cb7ff0000000000000'],
  ])('%d', (value, expected) => roundTrip(value, expected));

  it('writes NaN as float64 and -0 as 0, as @msgpack/msgpack does', () => {
    expect(hex(encodeMessagePackValue(NaN))).toBe('cb7ff8000000000000');
    expect(decodeMessagePackValue(encodeMessagePackValue(NaN))).toBeNaN();
    expect(hex(encodeMessagePackValue(-0))).toBe('00');
  });

  it('reads every integer form and float 32', () => {
    expect(decodeMessagePackValue(fromHex('cc05'))).toBe(5);
    expect(decodeMessagePackValue(fromHex('cd0005'))).toBe(5);
    expect(decodeMessagePackValue(fromHex('ce00000005'))).toBe(5);
    expect(decodeMessagePackValue(fromHex('cf0000000000000005'))).toBe(5);
    expect(decodeMessagePackValue(fromHex('d0fb'))).toBe(-5);
    expect(decodeMessagePackValue(fromHex('d1fffb'))).toBe(-5);
    expect(decodeMessagePackValue(fromHex('d2fffffffb'))).toBe(-5);
    expect(decodeMessagePackValue(fromHex('d3fffffffffffffffb'))).toBe(-5);
    expect(decodeMessagePackValue(fromHex('ca42280000'))).toBe(42);
    expect(decodeMessagePackValue(fromHex('ca3fc00000'))).toBe(1.5);
  });
});

describe('bigint: int64/uint64 without loss of precision', () => {
  it.each([
    [2n ** 60n, 'cf1000000000000000'],
    [2n ** 64n - 1n, 'cfffffffffffffffff'],
    [2n ** 53n, 'cf0020000000000000'],
    [-(2n ** 60n), 'd3f000000000000000'],
    [-(2n ** 63n), 'd38000000000000000'],
    [-(2n ** 53n), 'd3ffe0000000000000'],
  ])('%s round-trips as a bigint', (value, expected) => roundTrip(value, expected));

  it('writes small bigints in the smallest form, as MessagePack-CSharp writes a long', () => {
    expect(hex(encodeMessagePackValue(5n))).toBe('05');
    expect(hex(encodeMessagePackValue(-5n))).toBe('fb');
    expect(hex(encodeMessagePackValue(5000000000n))).toBe('cf000000012a05f200');
    // Read back as a number: inside the safe range a number is exact.
    expect(decodeMessagePackValue(encodeMessagePackValue(5000000000n))).toBe(5000000000);
  });

  it('reads the edges of the safe range as numbers and beyond it as bigints', () => {
    expect(decodeMessagePackValue(fromHex('cf001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeMessagePackValue(fromHex('cf0020000000000000'))).toBe(2n ** 53n);
    expect(decodeMessagePackValue(fromHex('d3ffe0000000000001'))).toBe(Number.MIN_SAFE_INTEGER);
    expect(decodeMessagePackValue(fromHex('d3ffe0000000000000'))).toBe(-(2n ** 53n));
    expect(decodeMessagePackValue(fromHex('d37fffffffffffffff'))).toBe(2n ** 63n - 1n);
  });

  it('refuses bigints outside int64/uint64', () => {
    expect(() => encodeMessagePackValue(2n ** 64n)).toThrow(RangeError);
    expect(() => encodeMessagePackValue(-(2n ** 63n) - 1n)).toThrow(RangeError);
  });

  it('keeps precision inside arrays and maps', () => {
    const value = { id: 12345678901234567890n, list: [-(2n ** 62n), 1] };
    expect(decodeMessagePackValue(encodeMessagePackValue(value))).toEqual(value);
  });
});

describe('other scalars', () => {
  it.each([
    [true, 'c3'],
    [false, 'c2'],
    [null, 'c0'],
  ])('%s', (value, expected) => roundTrip(value, expected));

  it('writes undefined as nil', () => {
    roundTrip(undefined, 'c0', null);
    roundTrip([undefined], '91c0', [null]);
    roundTrip({ a: undefined }, '81a161c0', { a: null });
  });

  it('refuses functions and symbols', () => {
    expect(() => encodeMessagePackValue(() => 1)).toThrow(TypeError);
    expect(() => encodeMessagePackValue(Symbol('x'))).toThrow(TypeError);
  });
});

describe('binary', () => {
  it('round-trips Uint8Array as bin 8/16/32', () => {
    roundTrip(new Uint8Array([1, 2, 3]), 'c403010203');
    roundTrip(new Uint8Array(0), 'c400');
    const b16 = new Uint8Array(256).fill(9);
    expect(hex(encodeMessagePackValue(b16).subarray(0, 3))).toBe('c50100');
    expect(decodeMessagePackValue(encodeMessagePackValue(b16))).toEqual(b16);
    const b32 = new Uint8Array(0x10000).fill(8);
    expect(hex(encodeMessagePackValue(b32).subarray(0, 5))).toBe('c600010000');
    expect(decodeMessagePackValue(encodeMessagePackValue(b32))).toEqual(b32);
  });

  it('reads bin as a plain Uint8Array copy, not a view of the input', () => {
    const input = fromHex('c403010203');
    const value = decodeMessagePackValue(input) as Uint8Array;
    expect(value).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(value)).toBe(false);
    input[2] = 0xff;
    expect(Array.from(value)).toEqual([1, 2, 3]);
  });

  it('writes Buffers, other typed arrays and ArrayBuffers as bin', () => {
    expect(hex(encodeMessagePackValue(Buffer.from([1, 2])))).toBe('c4020102');
    expect(hex(encodeMessagePackValue(new Uint16Array([0x0102])))).toBe('c4020201');
    expect(hex(encodeMessagePackValue(new Uint8Array([1, 2, 3]).buffer))).toBe('c403010203');
  });
});

describe('Date: timestamp extension -1', () => {
  it.each([
    ['the epoch', new Date(0), 'd6ff00000000'],
    ['whole seconds in 32 bits', new Date(Date.UTC(2020, 0, 2, 3, 4, 5)), 'd6ff5e0d5da5'],
    ['the last 32-bit second', new Date(0xffffffff * 1000), 'd6ffffffffff'],
    ['milliseconds', new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678)), 'd7ffa1a5d6005e0d5da5'],
    ['seconds past 32 bits', new Date(0x100000000 * 1000), 'd7ff0000000100000000'],
    ['before the epoch', new Date(-1000), 'c70cff00000000ffffffffffffffff'],
    ['before the epoch with milliseconds', new Date(-1), 'c70cff3b8b87c0ffffffffffffffff'],
    ['past 2^34 seconds', new Date(Date.UTC(3000, 0, 1)), 'c70cff 00000000 00000007915ecc00'],
  ])('%s', (_name, value, expected) => roundTrip(value, expected));

  it('writes an invalid Date as nil', () => {
    expect(hex(encodeMessagePackValue(new Date(NaN)))).toBe('c0');
  });

  it('reads a timestamp with nanoseconds to the millisecond, as @msgpack/msgpack does', () => {
    // 1.5 ms + 1 ns after the epoch (timestamp 64: nsec30 = 1500001).
    const bytes = fromHex('d7ff 005b8d84 00000000');
    expect((decodeMessagePackValue(bytes) as Date).getTime()).toBe((libDecode(bytes) as Date).getTime());
  });

  it('rejects a timestamp of another length with the MessagePack-CSharp text', () => {
    expect(() => decodeMessagePackValue(fromHex('d4ff00'))).toThrow(
      'Length of extension was 1. Either 4 or 8 were expected.',
    );
  });
});

describe('arrays and maps', () => {
  it('round-trips nested values with the compact headers', () => {
    roundTrip({ a: 1, b: [1, 2, 3] }, '82a16101a16293010203');
    roundTrip([], '90');
    roundTrip({}, '80');
    roundTrip(
      { nested: { deep: [{ x: null, y: [true, 'z'] }] } },
      '81a66e6573746564 81a464656570 91 82a178c0a17992c3a17a',
    );
  });

  it('uses array 16/32 and map 16/32 headers past 15 entries', () => {
    const a16 = Array.from({ length: 16 }, (_, i) => i);
    expect(hex(encodeMessagePackValue(a16).subarray(0, 3))).toBe('dc0010');
    expect(decodeMessagePackValue(encodeMessagePackValue(a16))).toEqual(a16);
    const a32 = new Array(0x10000).fill(0);
    expect(hex(encodeMessagePackValue(a32).subarray(0, 5))).toBe('dd00010000');
    expect(decodeMessagePackValue(encodeMessagePackValue(a32))).toEqual(a32);
    const m16 = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i]));
    expect(hex(encodeMessagePackValue(m16).subarray(0, 3))).toBe('de0010');
    expect(decodeMessagePackValue(encodeMessagePackValue(m16))).toEqual(m16);
    const m32 = Object.fromEntries(Array.from({ length: 0x10000 }, (_, i) => [`k${i}`, 0]));
    expect(hex(encodeMessagePackValue(m32).subarray(0, 5))).toBe('df00010000');
    expect(decodeMessagePackValue(encodeMessagePackValue(m32))).toEqual(m32);
  });

  it('writes a Map as a map of its entries and a Set as an array', () => {
    expect(
      hex(
        encodeMessagePackValue(
          new Map<unknown, unknown>([
            ['a', 1],
            [2, 'b'],
          ]),
        ),
      ),
    ).toBe('82a1610102a162');
    expect(hex(encodeMessagePackValue(new Set([1, 'a'])))).toBe('9201a161');
  });

  it('reads integer keys (as .NET writes a Dictionary<int, T>) as string properties', () => {
    expect(decodeMessagePackValue(fromHex('82 01a161 ffa162'))).toEqual({ '1': 'a', '-1': 'b' });
  });

  it('refuses map keys that cannot be property names', () => {
    expect(() => decodeMessagePackValue(fromHex('81 c0 01'))).toThrow(MessagePackFormatError);
    expect(() => decodeMessagePackValue(fromHex('81 90 01'))).toThrow(MessagePackFormatError);
  });

  it('reads repeated, colliding, non-ASCII and invalid keys correctly (through the key cache)', () => {
    // Two ASCII keys that share a slot of the 4096-slot cache (FNV-1a of the bytes, as the reader hashes them).
    const slot = (key: string): number => {
      let hash = 0x811c9dc5;
      for (const byte of Buffer.from(key)) hash = Math.imul(hash ^ byte, 0x01000193);
      return hash & 4095;
    };
    const first = 'key0';
    let second = '';
    for (let i = 1; !second; i++) if (slot(`key${i}`) === slot(first)) second = `key${i}`;
    const keys = [first, second, first, second, 'é', 'é', 'a\ufffd'];
    for (const key of keys) {
      expect(decodeMessagePackValue(encodeMessagePackValue({ [key]: 1 }))).toEqual({ [key]: 1 });
    }
    // An invalid byte decodes to U+FFFD; it must not be mistaken for a cached key either way.
    expect(decodeMessagePackValue(fromHex('81 a261ff 01'))).toEqual({ 'a\ufffd': 1 });
    expect(decodeMessagePackValue(fromHex('81 a261ff 01'))).toEqual({ 'a\ufffd': 1 });
    expect(decodeMessagePackValue(fromHex('81 a46112fffd 01'))).toEqual({ 'a\u0012\ufffd\ufffd': 1 });
  });

  it('reads a __proto__ key as an own property without touching the prototype', () => {
    const value = decodeMessagePackValue(fromHex('81 a95f5f70726f746f5f5f 81a17801')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ x: 1 });
  });

  it(`allows ${MAX_DEPTH} levels of nesting and no more`, () => {
    const nest = (depth: number): Buffer => Buffer.concat([Buffer.alloc(depth, 0x91), fromHex('00')]);
    expect(() => decodeMessagePackValue(nest(MAX_DEPTH))).not.toThrow();
    expect(() => decodeMessagePackValue(nest(MAX_DEPTH + 1))).toThrow(
      'This msgpack sequence has an object graph that exceeds the maximum depth allowed of 500.',
    );
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => encodeMessagePackValue(cyclic)).toThrow(RangeError);
  });
});

describe('extensions', () => {
  it('round-trips other extension types as ExtData with the smallest header', () => {
    roundTrip(new ExtData(5, new Uint8Array([1])), 'd40501');
    roundTrip(new ExtData(5, new Uint8Array([1, 2])), 'd5050102');
    roundTrip(new ExtData(-2, new Uint8Array(4)), 'd6fe00000000');
    roundTrip(new ExtData(5, new Uint8Array(8)), 'd705' + '00'.repeat(8));
    roundTrip(new ExtData(5, new Uint8Array(16)), 'd805' + '00'.repeat(16));
    roundTrip(new ExtData(5, new Uint8Array(3)), 'c70305000000');
    const long = new ExtData(7, new Uint8Array(300));
    expect(hex(encodeMessagePackValue(long).subarray(0, 4))).toBe('c8012c07');
    expect(decodeMessagePackValue(encodeMessagePackValue(long))).toEqual(long);
  });
});

describe('invalid input', () => {
  it.each([
    ['an empty input', '', 'Attempted to read past the end of the stream.'],
    ['a truncated string', 'a3 6162', 'Attempted to read past the end of the stream.'],
    ['a truncated uint32', 'ce 0001', 'Attempted to read past the end of the stream.'],
    ['an array longer than the bytes left', '93 01', 'Attempted to read past the end of the stream.'],
    ['a map longer than the bytes left', '82 a16101', 'Attempted to read past the end of the stream.'],
    ['a truncated map', '82 a16101 a162', 'Attempted to read past the end of the stream.'],
    ['a truncated bin', 'c4 05 0102', 'Attempted to read past the end of the stream.'],
    ['the unused code 0xc1', 'c1', 'Unexpected msgpack code 193 ((never used)) encountered.'],
  ])('%s', (_name, bytes, message) => {
    expect(() => decodeMessagePackValue(fromHex(bytes))).toThrow(message);
  });

  it('does not read past the end it was given', () => {
    // A map whose second key is cut off by `end`, with a valid-looking fixstr right after it.
    const bytes = fromHex('82 a16101 a0');
    expect(() => new MessagePackReader(bytes, 0, 4).readValue()).toThrow(
      'Attempted to read past the end of the stream.',
    );
  });

  it('names the typed reads after MessagePack-CSharp', () => {
    expect(() => new MessagePackReader(fromHex('a161')).readInt32()).toThrow(
      'Unexpected msgpack code 161 (fixstr) encountered.',
    );
    expect(() => new MessagePackReader(fromHex('ce80000000')).readInt32()).toThrow(
      'Arithmetic operation resulted in an overflow.',
    );
    expect(() => new MessagePackReader(fromHex('cf8000000000000000')).readInt64()).toThrow(
      'Arithmetic operation resulted in an overflow.',
    );
    expect(() => new MessagePackReader(fromHex('01')).readBoolean()).toThrow(
      'Unexpected msgpack code 1 (positive fixint) encountered.',
    );
    expect(() => new MessagePackReader(fromHex('c0')).readArrayHeader()).toThrow(
      'Unexpected msgpack code 192 (nil) encountered.',
    );
    expect(() => new MessagePackReader(fromHex('d9')).readString()).toThrow(
      'Attempted to read past the end of the stream.',
    );
    expect(new MessagePackReader(fromHex('c0')).readString()).toBeNull();
  });

  it('rejects trailing bytes after a value', () => {
    expect(() => decodeMessagePackValue(fromHex('01 02'))).toThrow('1 byte(s) found after the value.');
  });
});

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random values of every kind both libraries write alike (no bigint, Map, Set or lone surrogates). */
function randomValue(rand: () => number, depth: number): unknown {
  const pick = Math.floor(rand() * (depth > 3 ? 8 : 11));
  const int = (bits: number) => Math.floor((rand() - 0.5) * 2 ** bits);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return int([6, 8, 9, 16, 17, 32, 33, 40, 53][Math.floor(rand() * 9)]);
    case 3:
      return (rand() - 0.5) * 10 ** Math.floor(rand() * 20);
    case 4: {
      const alphabet = ['a', 'Z', '0', ' ', 'é', '€', '😀', '\n', 'ü'];
      const length = [0, 1, 5, 31, 32, 40, 255, 256, 300][Math.floor(rand() * 9)];
      let s = '';
      for (let i = 0; i < length; i++) s += alphabet[Math.floor(rand() * (rand() < 0.8 ? 4 : alphabet.length))];
      return s;
    }
    case 5:
      return Uint8Array.from({ length: [0, 3, 255, 256][Math.floor(rand() * 4)] }, () => Math.floor(rand() * 256));
    case 6:
      return new Date(Math.floor((rand() - 0.3) * 2 ** 42) * (rand() < 0.5 ? 1000 : 1));
    case 7:
      return 2 ** 32 + Math.floor(rand() * 2 ** 40);
    case 8:
    case 9:
      return Array.from({ length: Math.floor(rand() * (rand() < 0.1 ? 20 : 5)) }, () => randomValue(rand, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const count = Math.floor(rand() * (rand() < 0.1 ? 20 : 5));
      for (let i = 0; i < count; i++) object[`k${Math.floor(rand() * 1000)}`] = randomValue(rand, depth + 1);
      return object;
    }
  }
}

describe('differential check against @msgpack/msgpack', () => {
  it('writes the same bytes and reads the same values for 3000 random values', () => {
    const rand = random(42);
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(rand, 0);
      const ours = encodeMessagePackValue(value);
      const theirs = libEncode(value);
      if (hex(ours) !== hex(theirs))
        throw new Error(`bytes differ for ${JSON.stringify(value)}: ${hex(ours)} vs ${hex(theirs)}`);
      expect(decodeMessagePackValue(theirs)).toEqual(libDecode(theirs));
    }
  });
});
