/**
 * The open streams of one hub connection, both directions — ASP.NET Core's `StreamTracker` (client-to-server) and
 * the dispatcher's table of running stream invocations (server-to-client), with the per-connection bound
 * `maximumStreamsPerConnection` on each direction (docs/protocol.md §2.9).
 *
 * Client-to-server streams are keyed by stream id, server-to-client streams by invocation id. The tracker decides
 * nothing about invocations: the dispatcher asks it whether streams fit, opens and ends them; the connection ends
 * them all when it closes.
 */
import type { StreamItemMessage } from '../../protocol/messages';
import type { StreamParameter } from './hub-methods';
import type { ResultStream } from './result-stream';
import { UploadStream } from './upload-stream';

/** The options the tracker applies. */
export interface StreamLimits {
  /** Open streams per direction; `null` for no limit. */
  readonly maximumStreamsPerConnection: number | null;
  /** Items an upload buffers before the connection waits for its method. */
  readonly streamBufferCapacity: number;
  /** Whether an upload's binding errors carry their reason. */
  readonly enableDetailedErrors: boolean;
}

/** The streams of one connection. */
export class StreamTracker {
  private readonly uploads = new Map<string, UploadStream>();
  private readonly results = new Map<string, ResultStream>();

  /**
   * @param limits the hub's stream options
   * @param onRoom called when an upload that refused an item may now take it (the connection's input goes on)
   */
  constructor(
    private readonly limits: StreamLimits,
    private readonly onRoom: () => void,
  ) {}

  /** Server-to-client streams running now. */
  get resultCount(): number {
    return this.results.size;
  }

  /** Whether a server-to-client stream runs under `invocationId`. */
  hasResult(invocationId: string): boolean {
    return this.results.has(invocationId);
  }

  /** The limit when another server-to-client stream would exceed it, else `null`. */
  resultLimitReached(): number | null {
    const limit = this.limits.maximumStreamsPerConnection;
    return limit !== null && this.results.size >= limit ? limit : null;
  }

  /** The limit when `count` more client-to-server streams would exceed it, else `null`. */
  uploadLimitExceeded(count: number): number | null {
    const limit = this.limits.maximumStreamsPerConnection;
    return limit !== null && count > 0 && this.uploads.size + count > limit ? limit : null;
  }

  addResult(stream: ResultStream): void {
    this.results.set(stream.invocationId, stream);
  }

  /** Forgets a server-to-client stream that ended (unless another took its id meanwhile). */
  resultEnded(stream: ResultStream): void {
    if (this.results.get(stream.invocationId) === stream) this.results.delete(stream.invocationId);
  }

  /** CancelInvocation: cancels a running stream; unknown ids (finished streams, plain invocations) are ignored. */
  cancel(invocationId: string): void {
    this.results.get(invocationId)?.cancel();
  }

  /**
   * Opens the client-to-server streams of an invocation, one per stream parameter. A stream id already open is
   * taken over by the new stream, as .NET's stream tracker does (the old one then only ends with its method or
   * the connection).
   */
  openUploads(streamIds: readonly string[], parameters: readonly StreamParameter[]): UploadStream[] {
    const { streamBufferCapacity, enableDetailedErrors } = this.limits;
    const opened: UploadStream[] = new Array(streamIds.length);
    for (let i = 0; i < streamIds.length; i++) {
      const stream = new UploadStream(
        streamIds[i],
        streamBufferCapacity,
        parameters[i].itemSchema,
        enableDetailedErrors,
        this.onRoom,
      );
      this.uploads.set(streamIds[i], stream);
      opened[i] = stream;
    }
    return opened;
  }

  /** Ends the uploads of an invocation that settled: the method reads no more (.NET's `CleanupInvocation`). */
  endUploads(uploads: readonly UploadStream[] | undefined): void {
    if (uploads === undefined) return;
    for (const stream of uploads) {
      if (this.uploads.get(stream.streamId) === stream) this.uploads.delete(stream.streamId);
      stream.complete();
    }
  }

  /**
   * A StreamItem: to its upload. Returns false when that upload is full (the connection waits, then offers it
   * again); items of unknown streams are ignored.
   */
  offerItem(message: StreamItemMessage): boolean {
    const stream = this.uploads.get(message.invocationId);
    return stream === undefined || stream.offer(message.item);
  }

  /** A Completion that ends an upload; returns false when no upload has its id (it may be a client result). */
  completeUpload(streamId: string, error: string | undefined): boolean {
    const stream = this.uploads.get(streamId);
    if (stream === undefined) return false;
    this.uploads.delete(streamId);
    stream.completeFromClient(error);
    return true;
  }

  /**
   * The connection ended: producers see their signal abort, upload readers an OperationCanceledException
   * (`HubConnectionContext`: `StreamTracker.CompleteAll`).
   */
  closeAll(): void {
    for (const stream of this.results.values()) stream.connectionClosed();
    this.results.clear();
    for (const stream of this.uploads.values()) stream.connectionClosed();
    this.uploads.clear();
  }
}
