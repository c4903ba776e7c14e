/**
 * The hub handshake: the first record a client sends, and the server's one-record answer.
 *
 * Spec: docs/protocol.md §2.2. Both directions are JSON + 0x1E for every hub protocol (docs/protocol.md §2.1); the
 * request is `{"protocol":"json"|"messagepack","version":N}` (extra properties ignored), the success answer the
 * constant `{}`, and an error answer `{"error":"…"}`, after which the server ends the connection without a Close
 * message.
 */
import { isUtf8 } from 'node:buffer';
import { HubProtocolError } from './hub-protocol';
import { checkDecoded, jsonTokenName, readInteger, recordText } from './json-hub-protocol';
import { RECORD_SEPARATOR_CHAR } from './text-framing';

/** What a client asks for in its handshake. */
export interface HandshakeRequest {
  /** Hub protocol name, compared case-insensitively with the server's protocols. */
  readonly protocol: string;
  /** Hub protocol version; 2 only when stateful reconnect was negotiated. */
  readonly version: number;
}

/**
 * The success answer `{}` + 0x1E (bytes `7B 7D 1E`,
 * src/SignalR/common/SignalR.Common/src/Protocol/HandshakeProtocol.cs@v10.0.0 L28-L49).
 */
export const HANDSHAKE_SUCCESS: Buffer = Buffer.from(`{}${RECORD_SEPARATOR_CHAR}`, 'latin1');

/**
 * Parses the handshake record (separator excluded). Throws {@link HubProtocolError} with .NET's texts when the
 * record is not a JSON object holding a string `protocol` and an Int32 `version`
 * (src/SignalR/common/SignalR.Common/src/Protocol/HandshakeProtocol.cs@v10.0.0 L170-L232): a missing property's text
 * quotes the record (`Message content: …`), a `version` that is a number but no Int32 is a `FormatException`. Invalid
 * UTF-8 fails only inside `protocol`, the one string .NET decodes.
 */
export function parseHandshakeRequest(record: Uint8Array): HandshakeRequest {
  const text = recordText(record);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HubProtocolError('Error reading JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HubProtocolError(`Unexpected JSON Token Type '${jsonTokenName(value)}'. Expected a JSON Object.`);
  }
  const { protocol, version } = value as Record<string, unknown>;
  if (protocol !== undefined && typeof protocol !== 'string') {
    throw new HubProtocolError("Expected 'protocol' to be of type String.");
  }
  const versionNumber = version === undefined ? undefined : readInteger(version, 'version', 'Int32');
  if (protocol !== undefined) checkDecoded(protocol, !isUtf8(record));
  if (protocol === undefined)
    throw new HubProtocolError(`Missing required property 'protocol'. Message content: ${text}`);
  if (versionNumber === undefined)
    throw new HubProtocolError(`Missing required property 'version'. Message content: ${text}`);
  return { protocol, version: versionNumber };
}

/** The error answer `{"error":"<text>"}` + 0x1E. */
export function writeHandshakeError(error: string): Buffer {
  return Buffer.from(`${JSON.stringify({ error })}${RECORD_SEPARATOR_CHAR}`, 'utf8');
}

/** .NET's handshake error texts (src/SignalR/server/Core/src/HubConnectionContext.cs@v10.0.0 L493-L646). */
export const HandshakeErrors = {
  protocolNotSupported: (name: string) => `The protocol '${name}' is not supported.`,
  versionNotSupported: (version: number, name: string) =>
    `The server does not support version ${version} of the '${name}' protocol.`,
  transferFormatNotSupported: (name: string, format: string) =>
    `Cannot use the '${name}' protocol on the current transport. The transport does not support '${format}' transfer format.`,
  canceled: 'Handshake was canceled.',
  unexpected: 'An unexpected error occurred during connection handshake.',
} as const;

/** What {@link HandshakeReader.push} found once the handshake record is complete. */
export interface HandshakeRecord {
  /** The record, separator excluded. */
  readonly record: Buffer;
  /** Bytes after the separator in the same chunk: the first hub messages, for the hub protocol's reader. */
  readonly rest: Uint8Array;
}

/**
 * Collects the handshake record from the first bytes of a connection (docs/protocol.md §2.2: it must be the first
 * record; bytes after its 0x1E belong to the hub protocol). The handshake is bounded by the receive limit like any
 * message; a handshake that does not fit fails with "Handshake was canceled."
 * (src/SignalR/server/Core/src/HubConnectionContext.cs@v10.0.0 L527-L535).
 */
export class HandshakeReader {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  /** @param maximumSize largest handshake in bytes including its separator, or `null` for no limit */
  constructor(private readonly maximumSize: number | null) {}

  /**
   * Feeds bytes. Returns the record when complete, `null` when more bytes are needed; throws
   * {@link HubProtocolError} with "Handshake was canceled." when the handshake exceeds the limit.
   */
  push(chunk: Uint8Array): HandshakeRecord | null {
    const end = chunk.indexOf(0x1e);
    const limit = this.maximumSize;
    if (end === -1) {
      if (limit !== null && this.length + chunk.length >= limit) throw new HubProtocolError(HandshakeErrors.canceled);
      this.parts.push(chunk);
      this.length += chunk.length;
      return null;
    }
    if (limit !== null && this.length + end + 1 > limit) throw new HubProtocolError(HandshakeErrors.canceled);
    // Nearly every handshake arrives in one chunk: the record is then a view of it, parsed at once, not a copy.
    const record =
      this.parts.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, end)
        : Buffer.concat([...this.parts, chunk.subarray(0, end)], this.length + end);
    this.parts.length = 0;
    this.length = 0;
    return { record, rest: chunk.subarray(end + 1) };
  }
}
