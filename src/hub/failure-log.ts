/**
 * Rate-limited logging of one connection's hub method failures. A connection gets
 * {@link FAILURES_LOGGED_PER_WINDOW} lines with their stack traces per {@link FAILURE_WINDOW_MS}; further failures in
 * the window are counted and reported in one line when it ends, so a client whose calls fail by the thousand
 * (client results cancelled at its disconnect, say) cannot flood the log.
 */
import { logEvent, type Logger } from '../shared/log-events';

/** Hub method failures of one connection logged in full per window. */
export const FAILURES_LOGGED_PER_WINDOW = 5;
/** How long one window lasts. */
export const FAILURE_WINDOW_MS = 10_000;

/** One window of one connection; opened at its first failure, closed by its own timer. */
export class FailureLogWindow {
  private logged = 0;
  private suppressed = 0;
  private lastMethod = '';
  private lastError = '';

  /**
   * @param logger where the lines go
   * @param connectionId the connection whose failures these are
   * @param onClosed called when the window ends (the next failure opens a new one)
   */
  constructor(
    private readonly logger: Logger,
    private readonly connectionId: string,
    onClosed: () => void,
  ) {
    const timer = setTimeout(() => {
      onClosed();
      this.reportSuppressed();
    }, FAILURE_WINDOW_MS);
    timer.unref();
  }

  /** Logs one failure in full, or counts it once the window's lines are spent. */
  record(error: unknown, methodName: string, message: string): void {
    if (this.logged < FAILURES_LOGGED_PER_WINDOW) {
      this.logged++;
      logEvent(
        this.logger,
        'error',
        'signalr.invocation.failed',
        { err: error, connectionId: this.connectionId, method: methodName },
        message,
      );
      return;
    }
    this.suppressed++;
    this.lastMethod = methodName;
    this.lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }

  private reportSuppressed(): void {
    if (this.suppressed === 0) return;
    logEvent(
      this.logger,
      'error',
      'signalr.invocation.failed',
      {
        connectionId: this.connectionId,
        suppressed: this.suppressed,
        method: this.lastMethod,
        lastError: this.lastError,
      },
      `${this.suppressed} more hub method failure(s) of this connection were not logged one by one`,
    );
  }
}
