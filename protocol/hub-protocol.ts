/**
 * The bytes ↔ messages boundary: what every hub protocol (json, messagepack) offers the server.
 *
 * Spec: docs/protocol.md §2.1 (framing, receive limit) and §2.2 (protocol names and versions).
 */
import type { HubMessage } from './messages';

/** How a protocol's bytes travel: `Text` (UTF-8, WebSocket Text frames) or `Binary`. docs/protocol.md §1.4. */
export type TransferFormat = 'Text' | 'Binary';

/** Options for one connection's inbound reader. */
export interface HubMessageReaderOptions {
  /**
   * Largest accepted message in bytes, framing included (the 0x1E separator or the VarInt prefix), or
   * `null` for no limit. A message that does not fit fails the reader with {@link maximumMessageSizeExceeded}.
   */
  readonly maximumMessageSize: number | null;
}

/**
 * An incremental reader for one connection's inbound byte stream. Chunk boundaries mean nothing: a chunk may
 * hold several messages, part of one, or both.
 */
export interface HubMessageReader {
  /**
   * Feeds the next bytes and hands every message they complete to `onMessage`, in order. Messages of an unknown
   * type are skipped, as the official clients do. Throws {@link HubProtocolError} at the first invalid message,
   * after the messages before it were handed on (as .NET dispatches each message before parsing the next); the
   * reader is unusable afterwards.
   */
  push(chunk: Uint8Array, onMessage: (message: HubMessage) => void): void;
  /** Bytes held back because the message they start is not complete yet. */
  readonly bufferedBytes: number;
}

/** A hub protocol: message model ↔ framed bytes. Pure: no I/O, no timers. */
export interface HubProtocol {
  /** The name a client asks for in the handshake (`json`, `messagepack`). Compared case-insensitively. */
  readonly name: string;
  /** The highest protocol version this implementation speaks (2 since stateful reconnect). */
  readonly version: number;
  /** The transfer format the protocol's bytes need from the transport. */
  readonly transferFormat: TransferFormat;
  /** Whether a client asking for this version in the handshake is accepted (docs/protocol.md §2.2: `version <= 2`). */
  isVersionSupported(version: number): boolean;
  /** Creates the reader for one connection. */
  createReader(options: HubMessageReaderOptions): HubMessageReader;
  /** Serializes one message including its framing. */
  writeMessage(message: HubMessage): Buffer;
}

/**
 * Invalid data on a hub connection — .NET's `InvalidDataException`. The connection that sent it is closed with
 * a Close error (docs/protocol.md §2.8); the message is what a detailed error shows.
 */
export class HubProtocolError extends Error {
  override readonly name: string = 'InvalidDataException';
}

/**
 * A JSON number that does not fit the integer a property needs (`1.5` or `4294967296` for `type`) — .NET's
 * `FormatException` from `Utf8JsonReader.GetInt32`/`GetInt64`, which a detailed error names as such.
 */
export class JsonNumberFormatError extends HubProtocolError {
  override readonly name = 'FormatException';

  constructor(integerType: 'Int32' | 'Int64') {
    super(`Either the JSON value is not in a supported format, or is out of bounds for an ${integerType}.`);
  }
}

/**
 * The .NET text for a message that does not fit the receive window (docs/protocol.md §2.1,
 * src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L302-L337).
 */
export function maximumMessageSizeExceeded(limit: number): HubProtocolError {
  return new HubProtocolError(
    `The maximum message size of ${limit}B was exceeded. The message size can be configured in AddHubOptions.`,
  );
}
