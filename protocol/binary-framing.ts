/**
 * Binary framing: every MessagePack hub message is `[VarInt length][body]`.
 *
 * Spec: docs/protocol.md §2.1 (`src/SignalR/common/Shared/BinaryMessageParser.cs@v10.0.0 L11-L73`,
 * `src/SignalR/common/Shared/BinaryMessageFormatter.cs@v10.0.0 L11-L52`). The length is an unsigned LEB128-style
 * VarInt: 7 bits per byte, least-significant group first, high bit = "another byte follows", 1 to 5 bytes, at most
 * 2^31−1. .NET accepts non-minimal prefixes (`80 00` is a valid 0), so this parser does too.
 */
import { HubProtocolError, maximumMessageSizeExceeded } from './hub-protocol';

/** The longest length prefix: 2^31−1 needs 5 groups of 7 bits (BinaryMessageParser.cs `MaxLengthPrefixSize`). */
export const MAX_LENGTH_PREFIX_SIZE = 5;

/** The largest body length a prefix may announce (2 GB − 1, BinaryMessageParser.cs). */
export const MAX_BODY_LENGTH = 0x7fffffff;

/** .NET's `FormatException` text for a prefix over 5 bytes or a value over 2^31−1 (BinaryMessageParser.cs). */
export const MESSAGE_OVER_2GB = 'Messages over 2GB in size are not supported.';

/** How many bytes the VarInt prefix of a body of `length` bytes takes (BinaryMessageFormatter.LengthPrefixLength). */
export function lengthPrefixLength(length: number): number {
  return length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;
}

/**
 * Writes the VarInt prefix for a body of `length` bytes at `offset` and returns how many bytes it took
 * (BinaryMessageFormatter.WriteLengthPrefix). Callers reserve {@link lengthPrefixLength} bytes.
 */
export function writeLengthPrefix(length: number, target: Uint8Array, offset: number): number {
  if (!Number.isInteger(length) || length < 0 || length > MAX_BODY_LENGTH) {
    throw new RangeError(MESSAGE_OVER_2GB);
  }
  let i = offset;
  // `>>>` is safe: length < 2^31.
  while (length >= 0x80) {
    target[i++] = (length & 0x7f) | 0x80;
    length >>>= 7;
  }
  target[i++] = length;
  return i - offset;
}

/** Returns `body` with its length prefix in front, in one new Buffer. */
export function frameBinaryMessage(body: Uint8Array): Buffer {
  const prefix = lengthPrefixLength(body.length);
  const framed = Buffer.allocUnsafe(prefix + body.length);
  writeLengthPrefix(body.length, framed, 0);
  framed.set(body, prefix);
  return framed;
}

/** Result of looking at the start of a frame: `-1` while the prefix is incomplete. */
interface PrefixResult {
  /** Prefix bytes, or -1 when more bytes are needed to know. */
  prefixLength: number;
  /** Body length announced by the prefix (valid when `prefixLength > 0`). */
  bodyLength: number;
}

const prefixResult: PrefixResult = { prefixLength: -1, bodyLength: 0 };

/**
 * Decodes the prefix at `bytes[start..end)` into the shared {@link prefixResult}.
 *
 * Mirrors BinaryMessageParser.TryParseMessage: at most 5 bytes are examined; a 5th byte that still has the
 * continuation bit or carries more than 3 value bits (> 7) means a length of 2^31 or more. `limit` is the receive
 * window: as in src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L302-L337 a prefix that does not fit the
 * window fails with the size error, not with the 2 GB one, because .NET's parser never sees the bytes past the window.
 */
function readPrefix(bytes: Uint8Array, start: number, end: number, limit: number | null): PrefixResult {
  const available = Math.min(end - start, MAX_LENGTH_PREFIX_SIZE);
  let length = 0;
  for (let i = 0; i < available; i++) {
    const b = bytes[start + i];
    if (limit !== null && i + 1 > limit) throw maximumMessageSizeExceeded(limit);
    // Multiplication, not `<<`: the 5th group would overflow a 32-bit shift into the sign bit.
    length += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) {
      if (i === MAX_LENGTH_PREFIX_SIZE - 1 && b > 7) throw new HubProtocolError(MESSAGE_OVER_2GB);
      prefixResult.prefixLength = i + 1;
      prefixResult.bodyLength = length;
      return prefixResult;
    }
  }
  if (available === MAX_LENGTH_PREFIX_SIZE) throw new HubProtocolError(MESSAGE_OVER_2GB);
  // Incomplete prefix: the frame is at least one byte longer than what we have.
  if (limit !== null && available + 1 > limit) throw maximumMessageSizeExceeded(limit);
  prefixResult.prefixLength = -1;
  return prefixResult;
}

/**
 * Receives one message body: `bytes[start..end)`. The range is only valid during the call (it may lie in the
 * caller's chunk); a range rather than a view spares an allocation per message on the hot path.
 */
export type BodyHandler = (bytes: Buffer, start: number, end: number) => void;

/**
 * Splits a byte stream into message bodies at their length prefixes, whatever the chunking.
 *
 * Whole frames inside one chunk are handed out in place, without copying. A frame split across chunks is kept as
 * a list of chunk views and joined once, when its last byte arrives, so a message trickling in byte by byte costs
 * linear, not quadratic, copying. A chunk that holds part of an unfinished frame is kept by reference, so the
 * caller must not modify it until that frame is complete.
 */
export class LengthPrefixSplitter {
  private readonly parts: Uint8Array[] = [];
  private partsLength = 0;
  /** Total frame size (prefix + body) of the pending frame once its prefix is known, else -1. */
  private frameLength = -1;
  private readonly prefixScratch = new Uint8Array(MAX_LENGTH_PREFIX_SIZE);

  /**
   * @param maximumMessageSize Largest frame in bytes, prefix included, or `null` for no limit. A frame that cannot
   *   fit fails as soon as that is certain: when its prefix announces too much, or when more bytes than the limit
   *   arrived without completing its prefix.
   */
  constructor(private readonly maximumMessageSize: number | null) {}

  /** Bytes of a started but unfinished frame. */
  get bufferedBytes(): number {
    return this.partsLength;
  }

  /**
   * Feeds bytes; calls `onMessage` with each completed body (prefix excluded), in order. Throws
   * {@link HubProtocolError} for a prefix over 2 GB or a frame over the maximum message size.
   */
  push(chunk: Uint8Array, onMessage: BodyHandler): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let offset = 0;
    if (this.partsLength > 0) {
      offset = this.completePending(bytes, onMessage);
      if (offset < 0) return;
    }
    const limit = this.maximumMessageSize;
    const end = bytes.length;
    while (offset < end) {
      const prefix = readPrefix(bytes, offset, end, limit);
      if (prefix.prefixLength < 0) {
        this.keep(bytes.subarray(offset), -1);
        return;
      }
      const frameLength = prefix.prefixLength + prefix.bodyLength;
      if (limit !== null && frameLength > limit) throw maximumMessageSizeExceeded(limit);
      if (end - offset < frameLength) {
        this.keep(bytes.subarray(offset), frameLength);
        return;
      }
      onMessage(bytes, offset + prefix.prefixLength, offset + frameLength);
      offset += frameLength;
    }
  }

  private keep(rest: Buffer, frameLength: number): void {
    this.parts.push(rest);
    this.partsLength = rest.length;
    this.frameLength = frameLength;
  }

  /**
   * Continues the frame held in `parts` with `bytes`. Returns the offset in `bytes` after that frame, or -1 when
   * `bytes` was used up without completing it.
   */
  private completePending(bytes: Buffer, onMessage: BodyHandler): number {
    const limit = this.maximumMessageSize;
    if (this.frameLength < 0) {
      // The prefix itself is split: it is at most 5 bytes, so gather them into a scratch array to decode it.
      const scratch = this.prefixScratch;
      let n = 0;
      for (const part of this.parts) {
        for (let i = 0; i < part.length && n < MAX_LENGTH_PREFIX_SIZE; i++) scratch[n++] = part[i];
      }
      for (let i = 0; i < bytes.length && n < MAX_LENGTH_PREFIX_SIZE; i++) scratch[n++] = bytes[i];
      const prefix = readPrefix(scratch, 0, n, limit);
      if (prefix.prefixLength < 0) {
        this.parts.push(bytes);
        this.partsLength += bytes.length;
        return -1;
      }
      this.frameLength = prefix.prefixLength + prefix.bodyLength;
      if (limit !== null && this.frameLength > limit) throw maximumMessageSizeExceeded(limit);
    }
    const missing = this.frameLength - this.partsLength;
    if (bytes.length < missing) {
      this.parts.push(bytes);
      this.partsLength += bytes.length;
      return -1;
    }
    this.parts.push(bytes.subarray(0, missing));
    const frame = Buffer.concat(this.parts, this.frameLength);
    this.parts.length = 0;
    this.partsLength = 0;
    this.frameLength = -1;
    onMessage(frame, lengthPrefixLengthOf(frame), frame.length);
    return missing;
  }
}

/** Length of the (already validated) prefix at the start of `frame`. */
function lengthPrefixLengthOf(frame: Uint8Array): number {
  let i = 0;
  while ((frame[i] & 0x80) !== 0) i++;
  return i + 1;
}
