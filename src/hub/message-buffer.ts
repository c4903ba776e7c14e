/**
 * Stateful reconnect bookkeeping for one connection (docs/protocol.md §2.10; ASP.NET Core's `MessageBuffer`): both
 * sides number the messages that belong to invocations (types 1–5) from 1. Sent ones are kept until the client
 * acknowledges them, so they can be replayed on a new WebSocket; received ones are counted, so a replay from the client
 * is deduplicated, and acknowledged at most once a second.
 */

/** One sent message kept for replay. */
interface SentMessage {
  readonly id: number;
  readonly bytes: Buffer;
}

/** Acknowledgements go out at most this often (src/SignalR/common/Shared/MessageBuffer.cs@v10.0.0 L23). */
export const ACK_INTERVAL_MS = 1000;

/** Sent and received sequence numbers of one stateful-reconnect connection. */
export class MessageBuffer {
  private sent: SentMessage[] = [];
  private sentHead = 0;
  private sentCount = 0;
  private keptBytes = 0;

  private nextReceivingId = 1;
  private latestReceivedId = 0;
  private latestAckedId = 0;
  private lastAckAt = 0;

  /** Bytes kept for replay. */
  get bufferedBytes(): number {
    return this.keptBytes;
  }

  /** Records a sent sequenced message (its id is the next number). */
  recordSent(bytes: Buffer): void {
    this.sent.push({ id: ++this.sentCount, bytes });
    this.keptBytes += bytes.length;
  }

  /** The client received everything up to `sequenceId`: forget those. */
  acknowledge(sequenceId: number): void {
    const sent = this.sent;
    let head = this.sentHead;
    while (head < sent.length && sent[head].id <= sequenceId) {
      this.keptBytes -= sent[head].bytes.length;
      head++;
    }
    // Compact now and then rather than shifting on every ack.
    if (head > 1024 && head * 2 > sent.length) {
      this.sent = sent.slice(head);
      head = 0;
    }
    this.sentHead = head;
  }

  /** The `Sequence` id to send on reconnect: the first unacknowledged message, or the next one. */
  get replayStartId(): number {
    return this.sentHead < this.sent.length ? this.sent[this.sentHead].id : this.sentCount + 1;
  }

  /** The unacknowledged messages, oldest first. */
  *unacknowledged(): IterableIterator<Buffer> {
    for (let i = this.sentHead; i < this.sent.length; i++) yield this.sent[i].bytes;
  }

  /**
   * Whether the next sequenced message from the client is new. A duplicate (a replay of something already
   * handled) is to be skipped; a new one is to be handled, after which {@link MessageBuffer.received} counts it.
   */
  isDuplicate(): boolean {
    return this.nextReceivingId <= this.latestReceivedId;
  }

  /** Counts a sequenced message from the client as handled (or skipped, when it was a duplicate). */
  received(): void {
    const id = this.nextReceivingId++;
    if (id > this.latestReceivedId) this.latestReceivedId = id;
  }

  /**
   * The client's `Sequence` after a reconnect: the id of the first message it is about to replay. Returns false when
   * it is beyond what we received, which ends the connection.
   */
  resetSequence(sequenceId: number): boolean {
    if (sequenceId > this.nextReceivingId) return false;
    this.nextReceivingId = sequenceId;
    return true;
  }

  /** The id to acknowledge now, or `undefined` when nothing new arrived or the last ack is too recent. */
  ackDue(now: number): number | undefined {
    if (this.latestReceivedId <= this.latestAckedId || now - this.lastAckAt < ACK_INTERVAL_MS) return undefined;
    this.latestAckedId = this.latestReceivedId;
    this.lastAckAt = now;
    return this.latestReceivedId;
  }
}
