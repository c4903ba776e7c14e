/**
 * Loads `test/golden/dotnet-backplane.jsonl`: what two real ASP.NET Core servers published on one Redis
 * (format: `test/golden/CAPTURE.md`), and resolves its `{placeholder}` ids.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MsgTree } from './msgpack-tree';

/** The copy of the capture kept in the repository (see `test/golden/README.md`). */
export const GOLDEN_FILE = path.resolve(__dirname, '../../golden/dotnet-backplane.jsonl');

/** The shared original beside the repository (`<root>/../shared/golden/`), when this checkout has it. */
export function sharedGoldenFile(): string | undefined {
  const candidate = path.resolve(__dirname, '../../../../shared/golden/dotnet-backplane.jsonl');
  return fs.existsSync(candidate) ? candidate : undefined;
}

/** Where the golden file is: the repository's copy. */
export function findGoldenFile(): string {
  return GOLDEN_FILE;
}

/** A `message` line: one PUBLISH. */
export interface MessageLine {
  readonly scenario: string;
  readonly channel: string;
  readonly channelTemplate: string;
  readonly hex: string;
  readonly bytes: number;
  readonly publishedBy: string;
  readonly note: string;
  readonly capturedVia?: string;
  readonly decoded: {
    readonly envelope: MsgTree;
    readonly hubPayloads: Record<string, HubPayload>;
  };
}

/** A hub message inside a payload, decoded by the capture tool. */
export type HubPayload =
  | { readonly framing: '0x1e-terminated'; readonly endsWith1e: boolean; readonly text: string[] }
  | {
      readonly framing: 'varint-length-prefix';
      readonly prefixHex: string;
      readonly length: number;
      readonly body: MsgTree;
    };

/** A `step summary` line (also the channel lists after server starts, which have only `subscribed*`). */
export interface SummaryLine {
  readonly scenario: string;
  readonly note: string;
  readonly subscribed: string[];
  readonly subscribedTemplate: string[];
  readonly added?: string[];
  readonly removed?: string[];
  readonly redisCommands?: string[];
  readonly publishes?: number;
}

/** An `ids` line: the values behind the placeholders. */
export interface IdsLine {
  readonly scenario: string;
  readonly ids: Record<string, string | Record<string, string>>;
}

/** A `startup` line: the redis MONITOR command sequence of a starting server. */
export interface StartupLine {
  readonly scenario: string;
  readonly note: string;
  readonly monitor: string[];
}

/** One line of the file, classified, with its 1-based line number. */
export type GoldenLine =
  | { readonly kind: 'message'; readonly line: number; readonly value: MessageLine }
  | { readonly kind: 'summary'; readonly line: number; readonly value: SummaryLine }
  | { readonly kind: 'ids'; readonly line: number; readonly value: IdsLine }
  | { readonly kind: 'startup'; readonly line: number; readonly value: StartupLine };

/** Reads and classifies every line; throws on a line of no known kind. */
export function loadGolden(file: string): GoldenLine[] {
  const text = fs.readFileSync(file, 'utf8');
  const rows = text.split('\n').filter((row) => row.trim() !== '');
  return rows.map((row, index): GoldenLine => {
    const line = index + 1;
    const value = JSON.parse(row) as Record<string, unknown>;
    if ('hex' in value) return { kind: 'message', line, value: value as unknown as MessageLine };
    if ('subscribed' in value) return { kind: 'summary', line, value: value as unknown as SummaryLine };
    if ('ids' in value) return { kind: 'ids', line, value: value as unknown as IdsLine };
    if ('monitor' in value) return { kind: 'startup', line, value: value as unknown as StartupLine };
    throw new Error(`Golden line ${line} is of no known kind: ${row.slice(0, 120)}`);
  });
}

/** The flat placeholder dictionary of every ids line (each line repeats and extends the previous ones). */
export function mergeIds(lines: readonly GoldenLine[]): Map<string, string> {
  const ids = new Map<string, string>();
  for (const entry of lines) {
    if (entry.kind !== 'ids') continue;
    for (const [key, value] of Object.entries(entry.value.ids)) {
      if (typeof value !== 'string') continue;
      const known = ids.get(key);
      if (known !== undefined && known !== value) {
        throw new Error(`Golden line ${entry.line}: id ${key} is ${value}, earlier ${known}`);
      }
      ids.set(key, value);
    }
  }
  return ids;
}

const PLACEHOLDER = /\{([A-Za-z0-9]+)\}/g;

/** Replaces every `{name}` of `template` with its id; throws on an unknown placeholder. */
export function substitute(template: string, ids: ReadonlyMap<string, string>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = ids.get(name);
    if (value === undefined) throw new Error(`Unknown placeholder {${name}} in ${template}`);
    return value;
  });
}

/** The placeholder a template ends with (`…:connection:{jB}` → `jB`), if any. */
export function trailingPlaceholder(template: string): string | undefined {
  return /\{([A-Za-z0-9]+)\}$/.exec(template)?.[1];
}
