/**
 * The inbound message loop of one hub connection — the read loop of ASP.NET Core's `HubConnectionHandler`: raw
 * input is parsed by the protocol's reader and each message is dispatched in order, one at a time, as .NET's
 * receive loop awaits each dispatch (docs/protocol.md §2.6, §2.9).
 *
 * A dispatch may answer "wait": an Invocation of a plain method when every invocation slot is taken
 * (`maximumParallelInvocationsPerClient`, counted here), or a StreamItem for an upload whose buffer is full. That
 * message stays at the head of the queue, and everything behind it waits with it. While the loop waits, raw input
 * is held, and past {@link HELD_INPUT_PAUSE_BYTES} the sink is asked to stop reading, which pushes back on the
 * client through TCP. So a flood of invocations or a stalled upload consumer costs a bounded amount of memory, and
 * nothing is dropped. {@link InboundLoop.wake} lets the loop go on once what it waited for happened.
 *
 * The loop knows nothing of sockets or hubs: what it reads from and dispatches to is an {@link InboundSink}.
 */
import type { HubMessageReader } from '../../protocol/hub-protocol';
import { MessageType, type HubMessage } from '../../protocol/messages';

/**
 * Raw bytes held while the loop waits (for `onConnected`, an invocation slot, or room in an upload stream) before
 * the sink is asked to stop reading: ASP.NET Core's pipe pause threshold (`ApplicationMaxBufferSize`, 64 KiB).
 */
export const HELD_INPUT_PAUSE_BYTES = 64 * 1024;

/** What the loop runs on: its connection, seen through what the loop needs of it. */
export interface InboundSink {
  /** Whether messages may be dispatched now (the connection started and has not closed). */
  readonly accepting: boolean;
  /** Handles one message; returns false when it has to wait (it is offered again after a wake). */
  dispatch(message: HubMessage): boolean;
  /** The reader rejected the input; called in order, after every message parsed before the invalid one. */
  invalidInput(error: unknown): void;
  /** A dispatch threw: a fault of the server, which ends this connection, not the process. */
  loopFailed(error: unknown): void;
  /** Stop reading from the transport (too much input is held). */
  pauseInput(): void;
  /** Read again. */
  resumeInput(): void;
  /** The loop goes on after waiting: it read nothing meanwhile, so the client timeout restarts. */
  resumedAfterWait(): void;
}

/** A message the reader could not parse: handed to the sink when the loop reaches it. */
class InvalidInput {
  constructor(readonly error: unknown) {}
}

type InboxEntry = HubMessage | InvalidInput;

/** The loop of one connection. */
export class InboundLoop {
  private reader: HubMessageReader | null = null;
  private readonly inbox: InboxEntry[] = [];
  private inboxHead = 0;
  private heldInput: Buffer[] = [];
  private heldInputBytes = 0;
  private inputPaused = false;
  private inputFailed = false;
  /** Whether the message at the head of the inbox is waiting (for a slot, or room in an upload stream). */
  private blocked = false;
  private pumping = false;
  private pumpAgain = false;
  private activeInvocations = 0;

  /**
   * @param sink the connection
   * @param maximumParallelInvocations invocation slots (`maximumParallelInvocationsPerClient`)
   * @param counters where parsed messages other than Pings are counted (the hub's metrics)
   */
  constructor(
    private readonly sink: InboundSink,
    private readonly maximumParallelInvocations: number,
    private readonly counters: { messagesReceived: number },
  ) {}

  /** Whether the loop waits for a slot or for room in an upload stream. */
  get waiting(): boolean {
    return this.blocked;
  }

  /**
   * Starts reading with `reader` (after the handshake, or anew when a reconnecting transport takes over): what was
   * received but not yet handled is dropped.
   */
  reset(reader: HubMessageReader): void {
    this.reader = reader;
    this.clear();
  }

  /** Drops everything queued and held (the connection closed, or resumes on a new transport). */
  clear(): void {
    this.inbox.length = 0;
    this.inboxHead = 0;
    this.heldInput = [];
    this.heldInputBytes = 0;
    this.inputPaused = false;
    this.inputFailed = false;
    this.blocked = false;
  }

  /** Raw input from the transport: parsed and dispatched now when nothing waits, else held in order. */
  receive(chunk: Uint8Array): void {
    if (this.sink.accepting && !this.blocked && !this.pumping && this.heldInput.length === 0) {
      this.parse(chunk);
      this.pump();
      return;
    }
    this.hold(chunk);
  }

  /** Takes an invocation slot; false when all are taken (the Invocation then waits). */
  takeSlot(): boolean {
    if (this.activeInvocations >= this.maximumParallelInvocations) return false;
    this.activeInvocations++;
    return true;
  }

  /** Frees an invocation slot; a loop waiting for one goes on. */
  releaseSlot(): void {
    this.activeInvocations--;
    this.wake();
  }

  /**
   * Lets the loop go on after something it may have been waiting for happened (a slot freed, room in an upload
   * stream). Called from hub code too, so it never re-enters a running loop: that loop looks again instead.
   */
  wake(): void {
    if (this.pumping) this.pumpAgain = true;
    else if (this.blocked) this.pump();
  }

  /** Handles queued messages, then held input, until a message has to wait or nothing is left. */
  pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    const wasBlocked = this.blocked;
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.blocked = false;
        this.drain();
      } while (this.pumpAgain && this.sink.accepting);
    } catch (error) {
      this.sink.loopFailed(error);
    } finally {
      this.pumping = false;
    }
    if (!this.sink.accepting || this.blocked) return;
    if (wasBlocked) this.sink.resumedAfterWait();
    if (this.inputPaused) {
      this.inputPaused = false;
      this.sink.resumeInput();
    }
  }

  private hold(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.heldInput.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.heldInputBytes += chunk.length;
    if (!this.inputPaused && this.heldInputBytes >= HELD_INPUT_PAUSE_BYTES) {
      this.inputPaused = true;
      this.sink.pauseInput();
    }
  }

  private readonly enqueue = (message: HubMessage): void => {
    if (message.type !== MessageType.Ping) this.counters.messagesReceived++;
    this.inbox.push(message);
  };

  /** Parses a chunk into the inbox; an invalid message becomes an entry that reaches the sink in its turn. */
  private parse(chunk: Uint8Array): void {
    if (this.inputFailed) return;
    try {
      this.reader!.push(chunk, this.enqueue);
    } catch (error) {
      // Messages before the invalid one are still handled first, as .NET handles each before parsing the next.
      this.inputFailed = true;
      this.inbox.push(new InvalidInput(error));
    }
  }

  private drain(): void {
    const inbox = this.inbox;
    while (this.sink.accepting) {
      if (this.inboxHead < inbox.length) {
        const entry = inbox[this.inboxHead];
        if (entry instanceof InvalidInput) {
          this.sink.invalidInput(entry.error);
        } else if (!this.sink.dispatch(entry)) {
          this.blocked = true;
          return;
        }
        this.inboxHead++;
        continue;
      }
      inbox.length = 0;
      this.inboxHead = 0;
      const chunk = this.heldInput.shift();
      if (chunk === undefined) return;
      this.heldInputBytes -= chunk.length;
      this.parse(chunk);
    }
  }
}
