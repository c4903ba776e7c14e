/**
 * Group commands waiting for their ack (docs/protocol.md §3.6), for a lifetime manager and for the emitter alike.
 * A group change for a connection of another server is published on `{hub}:internal:groups` under a command id;
 * the server that owns the connection performs it and publishes that id on the sender's ack channel. Nobody acks a
 * command for a connection no server owns, so each wait ends after a timeout.
 */
import { decodeRedisAck, type RedisGroupAction } from '../../protocol/redis';
import type { BackplaneLogger } from '../lifetime/backplane-bus';

/** One group command, as the timeout's error and log describe it. */
export interface GroupCommand {
  readonly id: number;
  readonly connectionId: string;
  readonly groupName: string;
  readonly action: RedisGroupAction;
}

/** How the waits of one sender behave. */
export interface GroupCommandAcksOptions {
  /** How long a command waits for its ack. */
  readonly timeoutMs: number;
  /** The error a command rejects with when its ack did not come in time (it may also log). */
  readonly timeoutError: (command: GroupCommand) => Error;
  /**
   * Whether a pending wait keeps the process alive: a script awaiting a group change should not exit under it,
   * a server's shutdown should not wait for it.
   */
  readonly holdsProcess: boolean;
  readonly log: BackplaneLogger;
}

interface PendingAck {
  resolve(): void;
  reject(error: Error): void;
  readonly timer: NodeJS.Timeout;
}

const INT32_MAX = 0x7fffffff;

/** The acks one sender (a server's hub, or an emitter) waits for, by command id. */
export class GroupCommandAcks {
  private readonly pending = new Map<number, PendingAck>();
  private lastCommandId = 0;

  constructor(private readonly options: GroupCommandAcksOptions) {}

  /**
   * Sends one group command through `publish` (given the command's id, and a signal that aborts when the timeout
   * passes, so a publish still queued is withdrawn rather than sent after its caller got the error) and resolves
   * when its ack comes. Rejects with the timeout's error, or with the publish's own error when it fails first.
   */
  async send(
    command: Omit<GroupCommand, 'id'>,
    publish: (id: number, withdraw: AbortSignal) => Promise<unknown>,
  ): Promise<void> {
    // One counter per sender, from 1, shared by adds and removes
    // (src/SignalR/server/StackExchangeRedis/src/RedisHubLifetimeManager.cs@v10.0.0 L348); Int32 on the wire.
    this.lastCommandId = this.lastCommandId >= INT32_MAX ? 1 : this.lastCommandId + 1;
    const id = this.lastCommandId;
    const withdraw = new AbortController();
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        withdraw.abort();
        reject(this.options.timeoutError({ id, ...command }));
      }, this.options.timeoutMs);
      if (!this.options.holdsProcess) timer.unref();
      this.pending.set(id, { resolve, reject, timer });
    });
    try {
      await publish(id, withdraw.signal);
    } catch (error) {
      // Withdrawn from the queue by the timeout: the caller gets the timeout's error.
      if (withdraw.signal.aborted) await acked;
      this.forget(id);
      acked.catch(() => undefined);
      throw error;
    }
    await acked;
  }

  /** An ack from the sender's ack channel: the command it names is done. */
  onAck(payload: Buffer): void {
    let id: number;
    try {
      id = decodeRedisAck(payload);
    } catch (error) {
      this.options.log.warn({ err: error }, 'invalid ack from Redis');
      return;
    }
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.forget(id);
    pending.resolve();
  }

  /** Rejects every wait with `error` (the sender closes). */
  failAll(error: () => Error): void {
    for (const [id, pending] of this.pending) {
      this.forget(id);
      pending.reject(error());
    }
  }

  private forget(id: number): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
  }
}
