/**
 * The lint rule that keeps ioredis inside the Redis connector and bus (eslint.config.mjs): the repository's own
 * configuration, run on source that imports ioredis from elsewhere, reports it; the two files allowed pass. ESLint
 * runs in a child process, because it loads its configuration with a dynamic import that Jest's sandbox refuses.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

const IMPORT = "import Redis from 'ioredis';\nexport const connect = (): Redis => new Redis();\n";
const SUBPATH_IMPORT = "import type { RedisOptions } from 'ioredis/built/redis/RedisOptions';\nexport type O = RedisOptions;\n";

/** The import-restriction messages ESLint reports for each (path, source) pair, linted as if it were that file. */
function restrictedImports(files: readonly (readonly [path: string, code: string])[]): string[][] {
  const script = `
    const { ESLint } = require('eslint');
    const files = JSON.parse(process.argv[1]);
    (async () => {
      const eslint = new ESLint({ cwd: process.cwd() });
      const out = [];
      for (const [path, code] of files) {
        const [result] = await eslint.lintText(code, { filePath: require('node:path').resolve(path) });
        out.push(result.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message));
      }
      process.stdout.write(JSON.stringify(out));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script, JSON.stringify(files)], { cwd: ROOT, encoding: 'utf8' })) as string[][];
}

test('ioredis imported outside the Redis connector and bus fails lint; the connector and the bus may import it', () => {
  const [hub, config, manager, protocol, subpath, connector, bus] = restrictedImports([
    ['src/hub/some-file.ts', IMPORT],
    ['src/redis/redis-config.ts', IMPORT],
    ['src/redis/redis-lifetime-manager.ts', IMPORT],
    ['protocol/redis/some-file.ts', IMPORT],
    ['src/lifetime/some-file.ts', SUBPATH_IMPORT],
    ['src/redis/redis-connector.ts', IMPORT],
    ['src/redis/redis-bus.ts', IMPORT],
  ]);
  for (const messages of [hub, config, manager, protocol]) {
    expect(messages).toEqual([expect.stringContaining("'ioredis' import is restricted from being used. Only src/redis/redis-connector.ts")]);
  }
  expect(subpath).toEqual([expect.stringContaining("'ioredis/built/redis/RedisOptions' import is restricted")]);
  expect(connector).toEqual([]);
  expect(bus).toEqual([]);
});
