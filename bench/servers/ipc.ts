/**
 * What every Node peer server shares: it reports readiness on stdout (the orchestrator waits for the line) and,
 * when started with an IPC channel and `--expose-gc`, collects garbage on request so resident memory is read after
 * a full collection (idle-connection scenario), and reports its stalls (garbage-collection pauses, event-loop delay)
 * since the last report on request (the echo scenario lays them beside its latency).
 */
import { PauseMonitor } from '../lib/pauses';

/** Printed once the server listens; the orchestrator reads the port from it. */
export const READY_PREFIX = 'BENCH-READY ';

/** Announces readiness and installs the garbage-collection request handler. */
export function serverReady(port: number): void {
  const pauses = new PauseMonitor();
  process.on('message', (message: unknown) => {
    if (message === 'pauses') process.send?.({ pauses: pauses.take() });
    if (message === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      // Twice: the first pass may only queue finalizers whose objects the second one frees.
      gc?.();
      gc?.();
      process.send?.('gc-done');
    }
  });
  // An orphaned server (orchestrator killed) exits instead of lingering; SIGTERM exits normally so that a
  // `--cpu-prof` profile is written.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write(`${READY_PREFIX}${port}\n`);
}

/** `--name value` from the command line. */
export function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
