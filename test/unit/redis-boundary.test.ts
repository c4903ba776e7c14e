/**
 * The lint rule that keeps ioredis inside the Redis connector, the two buses and the sharded subscriptions
 * (eslint.config.mjs): the repository's
 * own configuration, run on source that imports ioredis from elsewhere, reports it; the four files allowed pass.
 */
import { lintSnippets } from '../support/lint';

const IMPORT = "import Redis from 'ioredis';\nexport const connect = (): Redis => new Redis();\n";
const SUBPATH_IMPORT =
  "import type { RedisOptions } from 'ioredis/built/redis/RedisOptions';\nexport type O = RedisOptions;\n";

/** The import-restriction messages ESLint reports for each (path, source) pair, linted as if it were that file. */
function restrictedImports(files: readonly (readonly [path: string, code: string])[]): string[][] {
  return lintSnippets(files.map(([filePath, code]) => ({ filePath, code }))).map((messages) =>
    messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message),
  );
}

test('ioredis imported outside the Redis connector and buses fails lint; the connector, the two buses and the sharded subscriptions may import it', () => {
  const [hub, config, manager, protocol, subpath, connector, bus, streamsBus, shards] = restrictedImports([
    ['src/hub/some-file.ts', IMPORT],
    ['src/redis/redis-config.ts', IMPORT],
    ['src/redis/redis-lifetime-manager.ts', IMPORT],
    ['protocol/redis/some-file.ts', IMPORT],
    ['src/lifetime/some-file.ts', SUBPATH_IMPORT],
    ['src/redis/redis-connector.ts', IMPORT],
    ['src/redis/redis-bus.ts', IMPORT],
    ['src/redis/streams-bus.ts', IMPORT],
    ['src/redis/shard-subscribers.ts', IMPORT],
  ]);
  for (const messages of [hub, config, manager, protocol]) {
    expect(messages).toEqual([
      expect.stringContaining("'ioredis' import is restricted from being used. Only src/redis/redis-connector.ts"),
    ]);
  }
  expect(subpath).toEqual([expect.stringContaining("'ioredis/built/redis/RedisOptions' import is restricted")]);
  expect(connector).toEqual([]);
  expect(bus).toEqual([]);
  expect(streamsBus).toEqual([]);
  expect(shards).toEqual([]);
});
