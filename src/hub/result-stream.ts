/**
 * A server-to-client stream (docs/protocol.md §2.9): the items a streaming hub method produces, sent as StreamItem
 * messages and ended by one Completion — ASP.NET Core's `DefaultHubDispatcher.StreamAsync`.
 *
 * The producer is pulled one item at a time. A CancelInvocation from the client aborts the method's
 * `abortSignal`, asks the iterator to `return()`, and ends the stream at once with a Completion without error
 * (docs/protocol.md §2.6: a cancelled stream is not an error). Items are pulled on promise callbacks, so a producer
 * that never awaits anything would starve the event loop; once a turn's queued output passes {@link YIELD_AFTER_BYTES}
 * the stream waits for the next turn, letting the transport flush and the connection read (a CancelInvocation, say).
 */
import type { StreamItemMessage } from '../../protocol/messages';
import { InvocationErrors, withErrorDetail } from '../shared/errors';
import { isThenable, iteratorOf, type AnyIterator } from './async-values';
import type { UploadStream } from './upload-stream';

/** Output queued within one event-loop turn after which a stream waits for the next turn. */
const YIELD_AFTER_BYTES = 64 * 1024;

/** What a result stream needs of its connection. */
export interface ResultStreamHost {
  /** Writes one StreamItem; throws when the item cannot be serialized. */
  writeStreamItem(message: StreamItemMessage): void;
  /** Bytes queued for the client and not yet handed to the transport in this turn. */
  readonly outboundBacklog: number;
  /** The stream is over: forget it, end its uploads, and send its Completion (with `error` if it failed). */
  streamEnded(stream: ResultStream, error: string | undefined): void;
  /** Logs a failure of the hub method. */
  logFailure(error: unknown, methodName: string, message: string): void;
}

/** Asks an iterator to stop (runs a generator's `finally`), ignoring what it says. */
function closeQuietly(iterator: AnyIterator | null | undefined): void {
  if (iterator == null || typeof iterator.return !== 'function') return;
  try {
    const outcome = iterator.return();
    if (isThenable(outcome)) outcome.then(undefined, () => undefined);
  } catch {
    // The producer failed while stopping; the stream is over either way.
  }
}

/** One running server-to-client stream. */
export class ResultStream {
  private readonly controller = new AbortController();
  private iterator: AnyIterator | null = null;
  private finished = false;
  // One message object per stream, refilled for each item (the writer serializes it at once).
  private readonly itemMessage: { type: 2; invocationId: string; item: unknown };

  /**
   * @param invocationId the client's id for the stream
   * @param target the method name as the client wrote it (for error texts)
   * @param methodName the method name as declared (for .NET's invalid-return text)
   * @param uploads client-to-server streams of this invocation, ended with it
   */
  constructor(
    private readonly host: ResultStreamHost,
    readonly invocationId: string,
    private readonly target: string,
    private readonly methodName: string,
    private readonly detailedErrors: boolean,
    readonly uploads: readonly UploadStream[] | undefined,
  ) {
    this.itemMessage = { type: 2, invocationId, item: undefined };
  }

  /** Aborted when the client cancels the stream or the connection ends: the method's `abortSignal`. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Calls the method (through `invoke`) and streams what it returns. */
  start(invoke: () => unknown): void {
    let result: unknown;
    try {
      result = invoke();
    } catch (error) {
      this.methodFailed(error);
      return;
    }
    if (isThenable(result)) result.then(this.begin, this.methodFailed);
    else this.begin(result);
  }

  /** CancelInvocation: stop the producer and end the stream without error. */
  cancel(): void {
    if (this.finished) return;
    this.controller.abort();
    closeQuietly(this.iterator);
    this.end(undefined);
  }

  /** The connection is gone: stop the producer; nothing can be sent any more. */
  connectionClosed(): void {
    if (this.finished) return;
    this.finished = true;
    this.controller.abort();
    closeQuietly(this.iterator);
  }

  private readonly methodFailed = (error: unknown): void => {
    if (this.finished) return;
    // The method threw before returning a stream: the invocation failed
    // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 StreamAsync).
    const text = InvocationErrors.unexpectedError(this.target);
    this.host.logFailure(error, this.methodName, 'hub method failed');
    this.end(withErrorDetail(text, error, this.detailedErrors));
  };

  private readonly begin = (value: unknown): void => {
    let iterator: AnyIterator | undefined;
    try {
      iterator = iteratorOf(value);
    } catch (error) {
      this.failed(error);
      return;
    }
    if (this.finished) {
      // Cancelled while the method was still resolving its stream.
      closeQuietly(iterator);
      return;
    }
    if (iterator === undefined) {
      this.end(InvocationErrors.invalidStreamReturn(this.methodName));
      return;
    }
    this.iterator = iterator;
    this.pull();
  };

  /** Takes items while they come synchronously; waits on the first one that does not. */
  private pull(): void {
    const iterator = this.iterator!;
    while (!this.finished) {
      let step: IteratorResult<unknown> | PromiseLike<IteratorResult<unknown>>;
      try {
        step = iterator.next();
      } catch (error) {
        this.failed(error);
        return;
      }
      if (isThenable(step)) {
        step.then(this.onStep, this.onError);
        return;
      }
      if (!this.accept(step)) return;
    }
  }

  private readonly onStep = (step: IteratorResult<unknown>): void => {
    if (this.accept(step)) this.pull();
  };

  private readonly onError = (error: unknown): void => {
    this.failed(error);
  };

  private readonly resume = (): void => {
    if (!this.finished) this.pull();
  };

  /** Sends one item; returns whether to pull the next one right away. */
  private accept(step: IteratorResult<unknown>): boolean {
    if (this.finished) return false;
    if (step.done) {
      this.end(undefined);
      return false;
    }
    const message = this.itemMessage;
    message.item = step.value;
    try {
      this.host.writeStreamItem(message as StreamItemMessage);
    } catch (error) {
      message.item = undefined;
      closeQuietly(this.iterator);
      this.failed(error);
      return false;
    }
    message.item = undefined;
    if (this.host.outboundBacklog >= YIELD_AFTER_BYTES) {
      setImmediate(this.resume);
      return false;
    }
    return true;
  }

  /**
   * The producer failed while streaming (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0
   * StreamAsync: `An error occurred ... streaming`).
   */
  private failed(error: unknown): void {
    if (this.finished) return;
    this.host.logFailure(error, this.methodName, 'streaming failed');
    this.end(withErrorDetail(InvocationErrors.streamingError, error, this.detailedErrors));
  }

  private end(error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.host.streamEnded(this, error);
  }
}
