/**
 * A client-to-server stream as a hub method sees it (docs/protocol.md §2.9): an `AsyncIterable` fed by the client's
 * StreamItem messages and ended by its Completion — ASP.NET Core's bounded channel behind `StreamTracker`.
 *
 * At most `capacity` items wait for the method. When the buffer is full, {@link UploadStream.offer} refuses the
 * item and the connection stops processing its input until the method takes one (.NET awaits the channel write
 * inside the receive loop the same way), so memory per stream stays bounded whatever the client sends.
 */
import { HubException, UploadStreamErrors, namedError, withErrorDetail, InvocationErrors } from '../shared/errors';
import { checkValue, type ArgumentSchema } from './hub';

type State = 'open' | 'completed' | 'abandoned';

interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(error: Error): void;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** One client-to-server stream bound to a hub method parameter. */
export class UploadStream implements AsyncIterableIterator<unknown> {
  // A ring buffer: items stay where they were written, so a consumer that never fully catches up costs no
  // copying and no growth beyond `capacity` slots.
  private readonly items: unknown[] = [];
  private start = 0;
  private count = 0;
  private state: State = 'open';
  private error: Error | undefined;
  /** Readers waiting for an item; only ever non-empty while the buffer is empty. */
  private waiters: Waiter[] = [];
  /** Whether the connection is waiting for room in this stream (an offer was refused). */
  private connectionWaiting = false;

  /**
   * @param streamId the client's id for the stream
   * @param capacity items buffered before offers are refused (`streamBufferCapacity`)
   * @param itemSchema checks each item; a rejected item ends the stream with .NET's stream binding error
   * @param detailedErrors whether that error carries the reason
   * @param onRoom called when a refused offer may now succeed (an item was taken, or the stream stopped taking)
   */
  constructor(
    readonly streamId: string,
    private readonly capacity: number,
    private readonly itemSchema: ArgumentSchema | undefined,
    private readonly detailedErrors: boolean,
    private readonly onRoom: () => void,
  ) {}

  /** Items buffered and not yet taken by the hub method. */
  get bufferedCount(): number {
    return this.count;
  }

  /**
   * Hands the stream an item from the client. Returns false, without taking it, when the buffer is full: the
   * caller offers it again after `onRoom`. Items for a stream that has ended are dropped (.NET ignores items for
   * streams it no longer tracks).
   */
  offer(item: unknown): boolean {
    if (this.state !== 'open') return true;
    if (this.waiters.length === 0 && this.count >= this.capacity) {
      this.connectionWaiting = true;
      return false;
    }
    let value = item;
    if (this.itemSchema !== undefined) {
      const outcome = checkValue(this.itemSchema, item);
      if (!outcome.ok) {
        // .NET completes the stream with a StreamBindingFailure; the method sees it as a HubException
        // (docs/protocol.md §2.9).
        this.complete(
          new HubException(
            withErrorDetail(
              UploadStreamErrors.itemBinding,
              namedError('InvalidDataException', InvocationErrors.bindingArguments),
              this.detailedErrors,
            ),
          ),
        );
        return true;
      }
      value = outcome.value;
    }
    if (this.waiters.length > 0) {
      this.waiters.shift()!.resolve({ done: false, value });
      return true;
    }
    this.items[(this.start + this.count) % this.capacity] = value;
    this.count++;
    return true;
  }

  /**
   * Ends the stream: the method reads the buffered items, then the end — or `error`, thrown from its loop. Later
   * calls are ignored.
   */
  complete(error?: Error): void {
    if (this.state !== 'open') return;
    this.state = 'completed';
    this.error = error;
    // Waiting readers mean the buffer is empty: they get the end now.
    const waiters = this.waiters;
    if (waiters.length > 0) {
      this.waiters = [];
      for (const waiter of waiters) this.settleEnd(waiter);
    }
    this.wakeConnection();
  }

  /** Ends the stream because the client completed it, with its error text if it sent one. */
  completeFromClient(errorText: string | undefined): void {
    this.complete(errorText === undefined ? undefined : new HubException(errorText));
  }

  /** Ends the stream because the connection is gone (.NET: `OperationCanceledException`). */
  connectionClosed(): void {
    this.complete(namedError('OperationCanceledException', UploadStreamErrors.connectionClosed));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<unknown> {
    return this;
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.count > 0) {
      const index = this.start;
      const value = this.items[index];
      this.items[index] = undefined;
      this.start = (index + 1) % this.capacity;
      this.count--;
      this.wakeConnection();
      return Promise.resolve({ done: false, value });
    }
    if (this.state === 'open') return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return new Promise((resolve, reject) => this.settleEnd({ resolve, reject }));
  }

  /** Leaving a `for await` early: the method wants no more items, so the rest of the stream is dropped. */
  return(): Promise<IteratorResult<unknown>> {
    if (this.state === 'open') this.state = 'abandoned';
    this.error = undefined;
    this.items.length = 0;
    this.count = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve(DONE);
    this.wakeConnection();
    return Promise.resolve(DONE);
  }

  private settleEnd(waiter: Waiter): void {
    const error = this.error;
    if (error === undefined) {
      waiter.resolve(DONE);
      return;
    }
    // The error is thrown once; a reader that goes on afterwards sees the end.
    this.error = undefined;
    waiter.reject(error);
  }

  private wakeConnection(): void {
    if (!this.connectionWaiting) return;
    this.connectionWaiting = false;
    this.onRoom();
  }
}
