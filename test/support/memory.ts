/**
 * Live-memory measurement for tests that claim "server memory stays flat".
 *
 * `process.memoryUsage()` on its own counts garbage that simply has not been collected yet — in a test where an
 * in-process client has just received tens of megabytes, that garbage dwarfs what the server actually retains.
 * Forcing full collections first makes the figure mean "bytes still reachable".
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
// A fresh context picks up the flag even though this process started without --expose-gc.
const collectGarbage = runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffer bytes that survive two full collections. */
export function liveBytes(): number {
  collectGarbage();
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
