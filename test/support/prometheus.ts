/**
 * Reading a Prometheus text exposition (what `/metrics` serves) in tests: every sample with its labels, and sums
 * over the samples that match some labels.
 */

/** One sample line: `name{label="value",…} 42`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parsed metrics. */
export class Metrics {
  constructor(
    readonly samples: readonly Sample[],
    /** `# TYPE` of each metric family. */
    readonly types: ReadonlyMap<string, string>,
  ) {}

  /** Parses the text format (version 0.0.4). */
  static parse(text: string): Metrics {
    const samples: Sample[] = [];
    const types = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        types.set(name, type);
        continue;
      }
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (match === null) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
      samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return new Metrics(samples, types);
  }

  /** The samples of `name` whose labels include `labels`. */
  find(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
  }

  /** The sum of the matching samples' values (0 when none match). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.find(name, labels).reduce((total, sample) => total + sample.value, 0);
  }

  /** Whether a metric family of that name is exposed. */
  has(name: string): boolean {
    return this.types.has(name);
  }
}

/** Fetches and parses `${baseUrl}/metrics`. */
export async function scrape(baseUrl: string): Promise<Metrics> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return Metrics.parse(await response.text());
}
