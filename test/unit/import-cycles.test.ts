/**
 * Files import each other in one direction only, through `src/` and `protocol/` (type-only imports included): each
 * layer's options are leaves (`hub/hub-options.ts`, `connections/dispatcher-options.ts`, `redis/redis-options.ts`) that
 * `options.ts` aggregates, so no layer imports back up through the plugin's options; in the hub runtime the endpoint
 * builds the dispatcher and the connection contexts, each connection context sees its endpoint through
 * `HubConnectionHost` and the dispatcher sees a connection through `DispatchedConnection`. An import cycle fails
 * here, naming the files on it. Files are discovered, not listed, so moving one keeps it checked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(__dirname, '../..');

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The repository files a file imports (relative imports only; packages cannot close a cycle). */
function importsOf(file: string, known: ReadonlySet<string>): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, false);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => relative(ROOT, resolve(ROOT, dirname(file), name)))
    .flatMap((base) => [`${base}.ts`, join(base, 'index.ts')].filter((candidate) => known.has(candidate)).slice(0, 1));
}

/**
 * The groups of files that import each other in a circle (strongly connected components of more than one file, or
 * a file importing itself) that include a file under `folder`; each group sorted.
 */
function cyclesThrough(folder: string, graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm: every cycle lies inside one component, so no cycle is missed.
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const connect = (file: string): void => {
    index.set(file, index.size);
    lowLink.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        connect(next);
        lowLink.set(file, Math.min(lowLink.get(file)!, lowLink.get(next)!));
      } else if (onStack.has(next)) {
        lowLink.set(file, Math.min(lowLink.get(file)!, index.get(next)!));
      }
    }
    if (lowLink.get(file) !== index.get(file)) return;
    const group: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== file);
    const circular = group.length > 1 || (graph.get(file) ?? []).includes(file);
    if (circular && group.some((entry) => entry.startsWith(folder))) groups.push(group.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) connect(file);
  return groups;
}

function repositoryGraph(): Map<string, string[]> {
  const files = [...sourceFiles('src'), ...sourceFiles('protocol')];
  const known = new Set(files);
  return new Map(files.map((file) => [file, importsOf(file, known)]));
}

test('no import cycle anywhere in src/ and protocol/', () => {
  const graph = repositoryGraph();
  expect(graph.get('src/hub/hub-endpoint.ts')).toEqual(expect.arrayContaining(['src/hub/hub-connection-context.ts']));
  expect(graph.get('src/options.ts')).toEqual(
    expect.arrayContaining(['src/hub/hub-options.ts', 'src/connections/dispatcher-options.ts']),
  );
  expect(cyclesThrough('', graph)).toEqual([]);
});

/** The folder graph: which folders' files import which other folders' files (`src` is the plugin's own root). */
function folderGraph(files: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const folders = new Map<string, Set<string>>();
  for (const [file, imports] of files) {
    const from = dirname(file);
    const targets = folders.get(from) ?? new Set<string>();
    for (const imported of imports) if (dirname(imported) !== from) targets.add(dirname(imported));
    folders.set(from, targets);
  }
  return new Map([...folders].map(([folder, targets]) => [folder, [...targets]]));
}

test('no import cycle between folders: the plugin root imports the layers, the layers import src/shared/ and below', () => {
  const folders = folderGraph(repositoryGraph());
  expect(folders.get('src')).toEqual(expect.arrayContaining(['src/hub', 'src/redis', 'src/transports']));
  expect(cyclesThrough('', folders)).toEqual([]);
  // src/shared/ holds the leaves every layer uses (errors, log events, option descriptors, ids, the heartbeat).
  expect(folders.get('src/shared')?.filter((folder) => folder.startsWith('src'))).toEqual([]);
});

test("no layer beneath the plugin imports the plugin's options: each reads its own leaf", () => {
  const graph = repositoryGraph();
  const importers = [...graph].filter(([, imports]) => imports.includes('src/options.ts')).map(([file]) => file);
  expect(importers.length).toBeGreaterThan(0);
  const beneath = /^src\/(connections|hub|lifetime|redis|transports|shared)\//;
  expect(importers.filter((file) => beneath.test(file))).toEqual([]);
});

test('the check finds a cycle when there is one', () => {
  const graph = new Map([
    ['src/hub/a.ts', ['src/hub/b.ts']],
    ['src/hub/b.ts', ['src/other/c.ts']],
    ['src/other/c.ts', ['src/hub/a.ts']],
    ['src/other/d.ts', ['src/other/e.ts']],
    ['src/other/e.ts', ['src/other/d.ts']],
  ]);
  expect(cyclesThrough('src/hub/', graph)).toEqual([['src/hub/a.ts', 'src/hub/b.ts', 'src/other/c.ts']]);
  expect(cyclesThrough('', graph)).toEqual([
    ['src/hub/a.ts', 'src/hub/b.ts', 'src/other/c.ts'],
    ['src/other/d.ts', 'src/other/e.ts'],
  ]);
});

test('the Redis bus reads its configuration, which imports nothing of the bus back', () => {
  const graph = repositoryGraph();
  expect(graph.get('src/redis/redis-config.ts')).toEqual(['src/redis/redis-connector.ts']);
  expect(graph.get('src/redis/redis-bus.ts')).toEqual(
    expect.arrayContaining(['src/redis/redis-config.ts', 'src/redis/redis-connector.ts']),
  );
});
