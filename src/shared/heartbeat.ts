/**
 * One timer for every periodic check of a server (keep-alive pings, client and handshake timeouts, expiry of
 * unused connections), as ASP.NET Core's 1 s heartbeat: an idle connection costs a set entry, not a timer.
 */

/** Something checked on every heartbeat tick. */
export interface HeartbeatParticipant {
  onHeartbeat(now: number): void;
}

/** A shared periodic tick. */
export class Heartbeat {
  private readonly participants = new Set<HeartbeatParticipant>();
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param intervalMs time between ticks; timeouts are therefore honoured within one interval
   * @param onError called when a participant throws, so one faulty connection cannot stop the others' checks
   */
  constructor(
    readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  add(participant: HeartbeatParticipant): void {
    this.participants.add(participant);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      // The heartbeat alone must not keep the process alive.
      this.timer.unref();
    }
  }

  delete(participant: HeartbeatParticipant): void {
    this.participants.delete(participant);
  }

  /** Runs every participant once. */
  tick(now = Date.now()): void {
    for (const participant of this.participants) {
      try {
        participant.onHeartbeat(now);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.participants.clear();
  }
}

/**
 * The tick interval for a set of timeouts: 1 s as in .NET, finer when an option asks for shorter intervals, so a
 * 200 ms keep-alive is honoured within 50 ms.
 */
export function heartbeatIntervalFor(intervalsMs: readonly number[]): number {
  const shortest = Math.min(...intervalsMs);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
}
