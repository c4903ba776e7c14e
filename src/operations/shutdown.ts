/**
 * Graceful shutdown on SIGTERM/SIGINT, for containers and process managers:
 * 1. stop taking new connections (negotiate and new WebSockets get 503; readiness turns 503, so a load balancer
 *    stops sending new clients — and, configured as in `samples/scale-out`, retries such a 503 on another server);
 * 2. send every client a Close with `allowReconnect: true` as soon as its running invocations and streams end
 *    (at once for idle ones): clients with automatic reconnect come back through the balancer to another server;
 * 3. after at most the drain time, close what is left, close the app (the HTTP server, the WebSocket server) and
 *    leave Redis — its connections are closed, so its subscriptions go with them;
 * 4. give the log up to `logFlushTimeoutMs` to write its last lines, and exit 0 (1 if closing failed). A second
 *    signal exits at once with 1; so does a shutdown still running after the sum of the budgets (and a second), so
 *    a step that never ends (a hung Redis, a log nobody reads) cannot keep the process alive.
 */
import type { FastifyInstance } from 'fastify';
import { logEvent } from '../shared/log-events';
import { flushLogs } from './logging';

/** Options of {@link installGracefulShutdown}. */
export interface GracefulShutdownOptions {
  /**
   * How long clients' running invocations may take to finish before their connections are closed anyway. Keep it
   * below the orchestrator's grace period (Kubernetes: 30 s; `docker stop`: 10 s) minus `closeTimeoutMs`.
   * @default 5000
   */
  readonly drainTimeoutMs?: number;
  /**
   * How long `app.close()` may then take (sockets of clients that never answered the close) before every remaining
   * socket is cut.
   * @default 3000
   */
  readonly closeTimeoutMs?: number;
  /**
   * How long the last log lines may take to be written before the process exits anyway (a log reader that is slow
   * or gone never holds the exit up longer).
   * @default 1000
   */
  readonly logFlushTimeoutMs?: number;
  /**
   * The signals that start the shutdown.
   * @default ['SIGTERM', 'SIGINT']
   */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * Ends the process with the given code.
   * @default process.exit
   */
  readonly exit?: (code: number) => void;
}

/** What {@link installGracefulShutdown} returns. */
export interface GracefulShutdown {
  /** Runs the shutdown (once; later calls return the same promise), as a signal would. */
  shutdown(reason: string): Promise<void>;
  /** Removes the signal handlers. */
  uninstall(): void;
}

/** Installs signal handlers that shut `app` down gracefully; see the file comment for the steps. */
export function installGracefulShutdown(app: FastifyInstance, options: GracefulShutdownOptions = {}): GracefulShutdown {
  const drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 3_000;
  const logFlushTimeoutMs = options.logFlushTimeoutMs ?? 1_000;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | null = null;

  const run = async (reason: string): Promise<void> => {
    const started = Date.now();
    // The last resort: whatever a step waits on, the process ends within its budgets.
    const deadline = setTimeout(() => exit(1), drainTimeoutMs + closeTimeoutMs + logFlushTimeoutMs + 1_000);
    deadline.unref();
    const connections = app.signalr.endpoints.reduce((count, endpoint) => count + endpoint.connectionCount, 0);
    logEvent(
      app.log,
      'info',
      'signalr.shutdown.started',
      { reason, connections, drainTimeoutMs },
      'shutting down: refusing new connections, closing each connection once its invocations are done',
    );
    let code = 0;
    try {
      const report = await app.signalr.drain({ timeoutMs: drainTimeoutMs });
      logEvent(
        app.log,
        'info',
        'signalr.shutdown.drained',
        report,
        report.cut === 0
          ? `every connection closed after finishing its invocations (${report.durationMs} ms)`
          : `${report.cut} connection(s) still busy after ${drainTimeoutMs} ms were closed anyway`,
      );
      // Sockets whose peers never acknowledge the close (a vanished client) would hold app.close() up.
      const cut = setTimeout(() => app.server.closeAllConnections(), closeTimeoutMs);
      cut.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
      }
    } catch (error) {
      code = 1;
      logEvent(app.log, 'error', 'signalr.shutdown.failed', { err: error }, 'shutdown failed');
    }
    logEvent(
      app.log,
      'info',
      'signalr.shutdown.completed',
      { durationMs: Date.now() - started, exitCode: code },
      'shut down',
    );
    await flushLogs(logFlushTimeoutMs);
    clearTimeout(deadline);
    exit(code);
  };

  const shutdown = (reason: string): Promise<void> => (running ??= run(reason));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (running !== null) {
      logEvent(app.log, 'warn', 'signalr.shutdown.forced', { signal }, 'second signal: exiting at once');
      exit(1);
      return;
    }
    void shutdown(signal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return {
    shutdown,
    uninstall: () => {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}
