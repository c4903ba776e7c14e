/**
 * What every Node peer server shares: it reports readiness on stdout (the orchestrator waits for the line) and,
 * when started with an IPC channel and `--expose-gc`, collects garbage on request so resident memory is read after
 * a full collection (idle-connection scenario).
 */

/** Printed once the server listens; the orchestrator reads the port from it. */
export const READY_PREFIX = 'BENCH-READY ';

/** Announces readiness and installs the garbage-collection request handler. */
export function serverReady(port: number): void {
  process.on('message', (message: unknown) => {
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
