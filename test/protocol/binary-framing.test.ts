/**
 * VarInt length-prefix framing (docs/protocol.md §2.1; BinaryMessageParser.cs / BinaryMessageFormatter.cs).
 */
import {
  LengthPrefixSplitter,
  MESSAGE_OVER_2GB,
  frameBinaryMessage,
  lengthPrefixLength,
  maximumMessageSizeExceeded,
  writeLengthPrefix,
} from '../../protocol';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function prefix(length: number): string {
  const out = Buffer.alloc(5);
  const n = writeLengthPrefix(length, out, 0);
  expect(n).toBe(lengthPrefixLength(length));
  return hex(out.subarray(0, n));
}

/** Splits `stream` at the given chunk boundaries and collects the bodies as hex. */
function split(splitter: LengthPrefixSplitter, chunks: Uint8Array[]): string[] {
  const bodies: string[] = [];
  for (const chunk of chunks) splitter.push(chunk, (bytes, start, end) => bodies.push(hex(bytes.subarray(start, end))));
  return bodies;
}

describe('length prefix writer', () => {
  it.each([
    [0, '00'],
    [1, '01'],
    [0x7f, '7f'],
    [0x80, '8001'],
    [0x3fff, 'ff7f'],
    [0x4000, '808001'],
    [0x1fffff, 'ffff7f'],
    [0x200000, '80808001'],
    [0xfffffff, 'ffffff7f'],
    [0x10000000, '8080808001'],
    [0x7fffffff, 'ffffffff07'],
  ])('writes %i as %s', (length, expected) => {
    expect(prefix(length)).toBe(expected);
  });

  it('refuses lengths of 2 GB and more', () => {
    expect(() => writeLengthPrefix(0x80000000, Buffer.alloc(5), 0)).toThrow(MESSAGE_OVER_2GB);
    expect(() => writeLengthPrefix(-1, Buffer.alloc(5), 0)).toThrow(RangeError);
  });

  it('frames a body', () => {
    expect(hex(frameBinaryMessage(fromHex('9106')))).toBe('029106');
    const big = Buffer.alloc(300, 0xc0);
    const framed = frameBinaryMessage(big);
    expect(hex(framed.subarray(0, 2))).toBe('ac02');
    expect(framed.length).toBe(302);
  });
});

describe('LengthPrefixSplitter', () => {
  it('splits several messages in one chunk', () => {
    const s = new LengthPrefixSplitter(null);
    expect(split(s, [fromHex('029106 049307c0c2 00 039207c0')])).toEqual(['9106', '9307c0c2', '', '9207c0']);
    expect(s.bufferedBytes).toBe(0);
  });

  it('joins a message split across chunks, including a split prefix', () => {
    const body = Buffer.alloc(200, 0xa1);
    const framed = frameBinaryMessage(body);
    const s = new LengthPrefixSplitter(null);
    expect(split(s, [framed.subarray(0, 1)])).toEqual([]);
    expect(s.bufferedBytes).toBe(1);
    expect(split(s, [framed.subarray(1, 50)])).toEqual([]);
    expect(s.bufferedBytes).toBe(50);
    expect(split(s, [Buffer.concat([framed.subarray(50), fromHex('029106')])])).toEqual([hex(body), '9106']);
    expect(s.bufferedBytes).toBe(0);
  });

  it('accepts any chunking of a stream, byte by byte included', () => {
    const bodies = [
      Buffer.alloc(0),
      fromHex('9106'),
      Buffer.alloc(127, 1),
      Buffer.alloc(128, 2),
      Buffer.alloc(20000, 3),
    ];
    const stream = Buffer.concat(bodies.map(frameBinaryMessage));
    const expected = bodies.map(hex);
    for (let at = 0; at <= stream.length; at += at < 300 ? 1 : 97) {
      expect(split(new LengthPrefixSplitter(null), [stream.subarray(0, at), stream.subarray(at)])).toEqual(expected);
    }
    const bytes = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
    expect(split(new LengthPrefixSplitter(null), bytes)).toEqual(expected);
  });

  it('copies a message trickling in byte by byte once, not once per byte', () => {
    const framed = frameBinaryMessage(Buffer.alloc(5000, 7));
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      const s = new LengthPrefixSplitter(null);
      let received = 0;
      for (let i = 0; i < framed.length; i++)
        s.push(framed.subarray(i, i + 1), (_bytes, start, end) => (received = end - start));
      expect(received).toBe(5000);
      expect(concat).toHaveBeenCalledTimes(1);
    } finally {
      concat.mockRestore();
    }
  });

  it('accepts a non-minimal prefix, as .NET does', () => {
    expect(split(new LengthPrefixSplitter(null), [fromHex('8200 9106')])).toEqual(['9106']);
  });

  it('accepts the largest prefix (2^31-1) and waits for its body', () => {
    const s = new LengthPrefixSplitter(null);
    expect(split(s, [fromHex('ffffffff07 00')])).toEqual([]);
    expect(s.bufferedBytes).toBe(6);
  });

  it.each([
    ['a 5th byte with the continuation bit', '8080808080 00'],
    ['a 5th byte over 7', 'ffffffff08'],
    ['a 5th byte of 0x0f', '808080800f'],
  ])('fails on %s', (_name, bytes) => {
    expect(() => split(new LengthPrefixSplitter(null), [fromHex(bytes)])).toThrow(MESSAGE_OVER_2GB);
    // The same when the prefix arrives byte by byte.
    const chunks = Array.from(fromHex(bytes), (b) => Buffer.from([b]));
    expect(() => split(new LengthPrefixSplitter(null), chunks)).toThrow(MESSAGE_OVER_2GB);
  });

  describe('maximum message size (prefix included)', () => {
    const limitError = maximumMessageSizeExceeded(10).message;

    it('has the .NET text', () => {
      expect(limitError).toBe(
        'The maximum message size of 10B was exceeded. The message size can be configured in AddHubOptions.',
      );
    });

    it('accepts a message of exactly the limit', () => {
      const framed = frameBinaryMessage(Buffer.alloc(9, 1));
      expect(framed.length).toBe(10);
      expect(split(new LengthPrefixSplitter(10), [framed, framed])).toHaveLength(2);
    });

    it('fails as soon as the prefix announces one byte too many', () => {
      const s = new LengthPrefixSplitter(10);
      expect(() => split(s, [fromHex('0a')])).toThrow(limitError);
    });

    it('fails on a prefix split across chunks that announces too much', () => {
      const s = new LengthPrefixSplitter(200);
      split(s, [fromHex('80')]);
      expect(() => split(s, [fromHex('02')])).toThrow(maximumMessageSizeExceeded(200).message);
    });

    it('fails on an unfinished prefix that is already longer than the window', () => {
      expect(() => split(new LengthPrefixSplitter(2), [fromHex('8080')])).toThrow(
        maximumMessageSizeExceeded(2).message,
      );
      // With a window of 3, .NET's parser never sees a 5th prefix byte: the size error wins over the 2 GB one.
      expect(() => split(new LengthPrefixSplitter(3), [fromHex('ffffffff08')])).toThrow(
        maximumMessageSizeExceeded(3).message,
      );
    });

    it('waits while a message may still fit', () => {
      const s = new LengthPrefixSplitter(10);
      expect(split(s, [fromHex('09 01020304')])).toEqual([]);
      expect(split(s, [fromHex('0506070809')])).toEqual(['010203040506070809']);
    });
  });
});
