/**
 * Where a Node process stood still during a measurement: its garbage-collection pauses (`PerformanceObserver`
 * 'gc' entries) and how late its event loop ran timers (`monitorEventLoopDelay`). Both the load generator and our
 * server keep one, so a latency percentile can be laid beside the stalls of each side: a p99 that follows the
 * generator's stalls was made by the client, one that follows the server's by the server.
 */
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';

/** Stalls of one process over a window. */
export interface Pauses {
  /** Total time in garbage-collection pauses, ms. */
  gcMs: number;
  /** The longest pause, ms. */
  gcMaxMs: number;
  /** Event-loop delay (how late a 1 ms timer ran), 99th percentile and maximum, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** Records the process's stalls from construction, or from the last {@link PauseMonitor.take}. */
export class PauseMonitor {
  private gcMs = 0;
  private gcMaxMs = 0;
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 1 });

  constructor() {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.gcMs += entry.duration;
        if (entry.duration > this.gcMaxMs) this.gcMaxMs = entry.duration;
      }
    }).observe({ entryTypes: ['gc'] });
    this.delay.enable();
  }

  /** The stalls since the last call, and a fresh start. */
  take(): Pauses {
    const pauses: Pauses = {
      gcMs: this.gcMs,
      gcMaxMs: this.gcMaxMs,
      loopDelayP99Ms: this.delay.percentile(99) / 1e6,
      loopDelayMaxMs: this.delay.max / 1e6,
    };
    this.gcMs = 0;
    this.gcMaxMs = 0;
    this.delay.reset();
    return pauses;
  }
}
