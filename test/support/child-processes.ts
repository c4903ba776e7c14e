/**
 * Every process a test starts (redis-server, load balancers, our server, the .NET reference server) is killed if
 * the test process exits first, so a failed or interrupted run leaves nothing listening behind it.
 */
import type { ChildProcess } from 'node:child_process';

/** Children started and not yet seen to exit. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills `child` when the test process exits, unless it has exited by then. */
export function killOnExit(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const live of liveChildren) {
        try {
          live.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  liveChildren.add(child);
  // A child that could not be started never exits; killing it at exit is then a harmless no-op.
  child.once('exit', () => liveChildren.delete(child));
}

/**
 * This process's environment without what the npm running the tests adds (`npm_*`, `INIT_CWD`) and without
 * `NODE_ENV`: a nested npm or Node program then behaves as it would for a user, not as a child of `npm test`.
 */
export function userEnvironment(extra: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.toLowerCase().startsWith('npm_') && name !== 'NODE_ENV' && name !== 'INIT_CWD') env[name] = value;
  }
  return { ...env, ...extra };
}
