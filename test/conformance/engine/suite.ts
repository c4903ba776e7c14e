/**
 * The jest side of the conformance suite: one `describe` per scenario table, one test per scenario.
 *
 * The servers a table needs — one reference server and one of ours per distinct {@link ServerSettings} — are
 * started once per table (in parallel; a reference server takes about 0.4 s to start) and stopped in `afterAll`,
 * including those that did start when another failed to. Each test runs its scenario against both servers at the
 * same time and compares:
 *
 * - normally `expect(ours).toEqual(reference)`: in a failure, "Expected" is what ASP.NET Core did and "Received"
 *   what fastify-signalr did;
 * - for a scenario marked with a {@link KnownDifference}, each server's observation against the one the scenario
 *   states for it, so the difference stays exactly the documented one.
 *
 * Scenarios mostly wait (for a timeout, for silence), so they run concurrently (`test.concurrent`, at most jest's
 * `maxConcurrency` at a time, 10 in `jest.config.js`); a scenario marked `exclusive` runs alone. Set
 * `CONFORMANCE_PRINT=1` to print both observations of every scenario, e.g. to write a new known difference from
 * them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeWithDotnet } from '../../support/dotnet-reference';
import { runScenario } from './run';
import type { Observation, Scenario, ServerSettings } from './scenario';
import { settingsKey, startOurs, startReference, type HubProtocolName, type Target } from './servers';

/** Where known differences are explained; every `knownDifference.entry` is a `###` heading there. */
export const KNOWN_DIFFERENCES_FILE = path.resolve(__dirname, '..', 'KNOWN-DIFFERENCES.md');

const START_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 30_000;
/** Per scenario, waiting for its turn included; the longest steps wait a few seconds. */
const SCENARIO_TIMEOUT_MS = 60_000;

/** The `###` headings of `KNOWN-DIFFERENCES.md`. */
export function knownDifferenceEntries(): Set<string> {
  const text = fs.readFileSync(KNOWN_DIFFERENCES_FILE, 'utf8');
  return new Set([...text.matchAll(/^### (.+?)\s*$/gm)].map((match) => match[1]));
}

/** The two servers for one settings object. */
interface Pair {
  reference: Target;
  ours: Target;
}

/**
 * Lets any number of shared holders in at once, or one exclusive holder alone; first come, first served, so an
 * exclusive scenario is not starved by a stream of shared ones.
 */
class ScenarioLock {
  private holders = 0;
  private exclusiveHeld = false;
  private readonly queue: Array<{ exclusive: boolean; enter: () => void }> = [];

  /** Runs `work` once the lock is held (alone if `exclusive`), and releases it however `work` ends. */
  async run<T>(exclusive: boolean, work: () => Promise<T>): Promise<T> {
    await new Promise<void>((enter) => {
      this.queue.push({ exclusive, enter });
      this.admit();
    });
    try {
      return await work();
    } finally {
      this.holders--;
      if (exclusive) this.exclusiveHeld = false;
      this.admit();
    }
  }

  private admit(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0];
      const admissible = next.exclusive ? this.holders === 0 : !this.exclusiveHeld;
      if (!admissible) return;
      this.queue.shift();
      this.holders++;
      if (next.exclusive) this.exclusiveHeld = true;
      next.enter();
    }
  }
}

/** Starts every server a table needs; resolves with them by settings key, or rejects once all starts settled. */
async function startServers(
  scenarios: readonly Scenario[],
  protocol: HubProtocolName,
  started: Target[],
): Promise<Map<string, Pair>> {
  const bySettings = new Map<string, ServerSettings>();
  for (const scenario of scenarios) bySettings.set(settingsKey(scenario.settings), scenario.settings ?? {});
  const pairs = new Map<string, Pair>();
  const starts = [...bySettings].map(async ([key, settings]) => {
    const [reference, ours] = await Promise.allSettled([
      startReference(settings, protocol),
      startOurs(settings, protocol),
    ]);
    for (const result of [reference, ours]) if (result.status === 'fulfilled') started.push(result.value);
    if (reference.status === 'rejected') throw reference.reason;
    if (ours.status === 'rejected') throw ours.reason;
    pairs.set(key, { reference: reference.value, ours: ours.value });
  });
  // Wait for every start, so afterAll sees every server that came up, then report the first failure.
  const results = await Promise.allSettled(starts);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
  return pairs;
}

/** Asserts what the two servers did in `scenario`. */
function compare(scenario: Scenario, reference: Observation, ours: Observation): void {
  const difference = scenario.knownDifference;
  if (difference === undefined) {
    expect(ours).toEqual(reference);
    return;
  }
  if (!knownDifferenceEntries().has(difference.entry)) {
    throw new Error(`KNOWN-DIFFERENCES.md has no entry '### ${difference.entry}'`);
  }
  // ASP.NET Core still does what the entry describes ...
  expect(reference).toEqual(difference.reference);
  // ... and so do we.
  expect(ours).toEqual(difference.ours);
}

/** How {@link conformanceSuite} runs its table. */
export interface SuiteOptions {
  /**
   * The hub protocol: `json` (both servers offer JSON alone), or `messagepack` (both offer JSON and MessagePack and
   * the official clients speak MessagePack; only for scenarios of official-client steps).
   * @default 'json'
   */
  readonly protocol?: HubProtocolName;
}

/**
 * Declares a jest `describe` named `title` that runs every scenario of `scenarios` against both servers.
 * Call it once at the top level of a test file.
 */
export function conformanceSuite(title: string, scenarios: readonly Scenario[], options: SuiteOptions = {}): void {
  const protocol = options.protocol ?? 'json';
  describeWithDotnet(title, () => {
    const started: Target[] = [];
    const lock = new ScenarioLock();
    let servers: Promise<Map<string, Pair>> | undefined;
    // Concurrent tests start before beforeAll hooks run, so each one waits for the servers itself.
    const ready = () => (servers ??= startServers(scenarios, protocol, started));

    beforeAll(async () => {
      await ready();
    }, START_TIMEOUT_MS);

    afterAll(async () => {
      await ready().catch(() => undefined);
      await Promise.allSettled(started.map((target) => target.stop()));
    }, STOP_TIMEOUT_MS);

    for (const scenario of scenarios) {
      test.concurrent(
        scenario.name,
        async () => {
          const pair = (await ready()).get(settingsKey(scenario.settings));
          if (pair === undefined) throw new Error('the servers for this scenario did not start');
          const [reference, ours] = await lock.run(scenario.exclusive === true, () =>
            Promise.all([runScenario(pair.reference, scenario), runScenario(pair.ours, scenario)]),
          );
          if (process.env.CONFORMANCE_PRINT) {
            process.stdout.write(`\n### ${scenario.name}\n${JSON.stringify({ reference, ours }, null, 2)}\n`);
          }
          compare(scenario, reference, ours);
        },
        SCENARIO_TIMEOUT_MS,
      );
    }
  });
}
