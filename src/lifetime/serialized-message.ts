import type { HubProtocol } from '../../protocol/hub-protocol';
import type { HubMessage } from '../../protocol/messages';
import { ConnectionErrors } from '../shared/errors';

/**
 * A hub message serialized at most once per protocol, however many connections it goes to (as ASP.NET Core's
 * `SerializedHubMessage`). A message received from a backplane arrives already serialized for each protocol and
 * is written to clients without re-encoding.
 */
export class SerializedHubMessage {
  // Two protocols exist in practice; a short array beats a Map on this per-recipient path.
  private readonly names: string[] = [];
  private readonly bytes: Buffer[] = [];
  /** The message read back from `serialized` for a protocol it lacks, once asked for. */
  private decoded: HubMessage | null = null;

  /**
   * @param message the message, or `null` when only pre-serialized bytes are known
   * @param serialized bytes already framed per protocol name (a backplane payload)
   * @param decode with `message` null: reads the message back from `serialized`, for a connection whose protocol
   *   the bytes lack (a payload from a server that speaks fewer protocols); `null` when it cannot. Without it,
   *   such a connection fails as in .NET.
   */
  constructor(
    readonly message: HubMessage | null,
    serialized?: Iterable<readonly [string, Uint8Array]>,
    private readonly decode?: () => HubMessage | null,
  ) {
    if (serialized !== undefined) {
      for (const [name, data] of serialized) {
        this.names.push(name);
        this.bytes.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      }
    }
  }

  /** The framed bytes for `protocol`, serialized on first use. */
  getBytes(protocol: HubProtocol): Buffer {
    const names = this.names;
    for (let i = 0; i < names.length; i++) {
      if (names[i] === protocol.name) return this.bytes[i];
    }
    const message = this.message ?? (this.decoded ??= this.decode?.() ?? null);
    if (message === null) {
      // .NET aborts such a connection with this text.
      throw new Error(ConnectionErrors.protocolUnavailable);
    }
    const data = protocol.writeMessage(message);
    names.push(protocol.name);
    this.bytes.push(data);
    return data;
  }
}
