/**
 * The window SUBSCRIBE/UNSUBSCRIBE (and their sharded forms) go out through: at most
 * {@link SUBSCRIPTION_WINDOW_BYTES} of channel names awaiting Redis's replies on one subscriber connection. Each
 * reply repeats the channel name, and Redis kills a subscriber whose unread replies pass its
 * `client-output-buffer-limit pubsub` (32 MB at once, or 8 MB for 60 s, by default): without the window, a connection
 * leaving a thousand long-named groups, or a resubscription after an outage, could get the subscriber dropped and
 * lose what other servers publish meanwhile. Shared by `redis-bus.ts` and `shard-subscribers.ts`.
 */

/**
 * Channel-name bytes of SUBSCRIBE/UNSUBSCRIBE commands in flight at once: far below the 8 MB soft limit of Redis's
 * default `client-output-buffer-limit pubsub`, and large enough that thousands of ordinary channels still go out in
 * one pipelined batch.
 */
export const SUBSCRIPTION_WINDOW_BYTES = 1024 * 1024;
/** What one subscription reply costs beside its channel name (RESP framing, the kind, the count). */
export const SUBSCRIPTION_REPLY_OVERHEAD = 64;

/**
 * Runs tasks in order, starting the next one only while the bytes of those in flight stay within a window (a
 * single task larger than the window runs alone).
 */
export class ByteWindow {
  private inFlight = 0;
  private readonly waiting: Array<{ bytes: number; start: () => void }> = [];

  constructor(private readonly maximumBytes: number) {}

  run<T>(bytes: number, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.inFlight += bytes;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.inFlight -= bytes;
            this.startWaiting();
          });
      };
      this.waiting.push({ bytes, start });
      this.startWaiting();
    });
  }

  private startWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0];
      if (this.inFlight > 0 && this.inFlight + next.bytes > this.maximumBytes) return;
      this.waiting.shift();
      next.start();
    }
  }
}
