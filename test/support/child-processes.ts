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
