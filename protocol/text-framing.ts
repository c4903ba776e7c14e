/**
 * Text framing: every record is UTF-8 JSON followed by the record separator 0x1E.
 *
 * Spec: docs/protocol.md §2.1 (`src/SignalR/common/Shared/TextMessageFormatter.cs`, `TextMessageParser.cs`). The
 * separator cannot occur inside JSON text, so no escaping exists.
 */
import { maximumMessageSizeExceeded } from './hub-protocol';

/** The record separator byte. */
export const RECORD_SEPARATOR = 0x1e;
/** The record separator as a one-character string. */
export const RECORD_SEPARATOR_CHAR = '\u001e';

/**
 * Splits a byte stream into records at 0x1E, whatever the chunking.
 *
 * A partial record is kept as a list of chunk views and joined once when its separator arrives, so a message
 * trickling in byte by byte costs linear, not quadratic, copying.
 */
export class RecordSplitter {
  private readonly parts: Uint8Array[] = [];
  private partsLength = 0;

  /**
   * @param maximumRecordSize Largest record in bytes including its separator, or `null` for no limit. As in .NET,
   *   a record whose separator is not within that window is an error, even before the separator arrives.
   */
  constructor(private readonly maximumRecordSize: number | null) {}

  /** Bytes of a started but unfinished record. */
  get bufferedBytes(): number {
    return this.partsLength;
  }

  /** Feeds bytes; calls `onRecord` with each completed record, separator excluded. */
  push(chunk: Uint8Array, onRecord: (record: Buffer) => void): void {
    let start = 0;
    const limit = this.maximumRecordSize;
    while (start < chunk.length) {
      const end = chunk.indexOf(RECORD_SEPARATOR, start);
      if (end === -1) {
        const rest = chunk.length - start;
        // The record now holds `partsLength + rest` bytes and still lacks its separator, so its size is at
        // least one more than that.
        if (limit !== null && this.partsLength + rest >= limit) throw maximumMessageSizeExceeded(limit);
        this.parts.push(chunk.subarray(start));
        this.partsLength += rest;
        return;
      }
      if (limit !== null && this.partsLength + (end - start) + 1 > limit) throw maximumMessageSizeExceeded(limit);
      onRecord(this.take(chunk, start, end));
      start = end + 1;
    }
  }

  private take(chunk: Uint8Array, start: number, end: number): Buffer {
    const tail = chunk.subarray(start, end);
    if (this.partsLength === 0) return Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    this.parts.push(tail);
    const record = Buffer.concat(this.parts, this.partsLength + tail.length);
    this.parts.length = 0;
    this.partsLength = 0;
    return record;
  }
}
