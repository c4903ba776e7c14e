/**
 * Each option is written once, in its descriptor; what documents it elsewhere is held to that descriptor here. The
 * README's tables (the plugin's options, `redis.*`, `management.*`, the environment variables) must be exactly what the descriptors
 * and the configuration table say — a row missing, a stale row, a wrong default or another text fails — and the
 * `@default` of every option interface's TSDoc must be the descriptor's default.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { hubConnectionOptionDescriptors } from '../../src/hub/hub-options';
import { managementOptionDescriptors } from '../../src/management/management-options';
import { documentedDefault, type DescriptorTable } from '../../src/shared/option-descriptors';
import { pluginOptionDescriptors, registrationOptionDescriptors } from '../../src/options';
import { redisOptionDescriptors, redisPresenceOptionDescriptors } from '../../src/redis/redis-options';
import { httpDispatcherOptionDescriptors, httpServerOptionDescriptors } from '../../src/connections/dispatcher-options';
import { README, readmeTables, renderOptionTables, rewriteReadme } from '../support/option-tables';

const ROOT = path.resolve(__dirname, '../..');

test('the README tables are the ones the code describes (npm run docs:options rewrites them)', () => {
  const tables = readmeTables(readFileSync(README, 'utf8'));
  expect(Object.keys(tables).sort()).toEqual(['environment', 'management', 'options', 'redis']);
  const rendered = renderOptionTables();
  for (const name of Object.keys(rendered))
    expect({ name, table: tables[name] }).toEqual({ name, table: rendered[name] });
});

test('a missing row, a stale row or a wrong default in a README table is told apart from the real one', () => {
  const readme = readFileSync(README, 'utf8');
  const doctored = [
    readme.replace(/\n\| `keepAliveIntervalMs` \|[^\n]*/, ''),
    readme.replace('| `maximumGroupNameLength` | 1024 |', '| `maximumGroupNameLength` | 2048 |'),
    readme.replace(
      '| `ackTimeoutMs` | 30000 |',
      '| `ackTimeoutMs` | 30000 |\n| `retiredOption` | 5 | no longer read |',
    ),
    readme.replace(
      '| `SIGNALR_MAXIMUM_CONNECTIONS` | `maximumConnections` | none |',
      '| `SIGNALR_MAXIMUM_CONNECTIONS` | `maximumConnections` | 100 |',
    ),
  ];
  const rendered = renderOptionTables();
  for (const text of doctored) {
    expect(text).not.toBe(readme);
    const tables = readmeTables(text);
    expect(Object.keys(rendered).some((name) => tables[name] !== rendered[name])).toBe(true);
    expect(rewriteReadme(text)).toBe(rewriteReadme(readme));
  }
});

/** The `@default` tag of each member of an interface declared in `file`, whitespace folded. */
function tsdocDefaults(file: string, interfaceName: string): Map<string, string | undefined> {
  const source = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const declaration = source.statements.find(
    (statement): statement is ts.InterfaceDeclaration =>
      ts.isInterfaceDeclaration(statement) && statement.name.text === interfaceName,
  );
  if (declaration === undefined) throw new Error(`${file} declares no interface ${interfaceName}`);
  const defaults = new Map<string, string | undefined>();
  for (const member of declaration.members) {
    if (member.name === undefined || !ts.isIdentifier(member.name)) continue;
    const tag = ts.getJSDocTags(member).find((candidate) => candidate.tagName.text === 'default');
    defaults.set(
      member.name.text,
      tag === undefined ? undefined : ts.getTextOfJSDocComment(tag.comment)?.replace(/\s+/g, ' ').trim(),
    );
  }
  return defaults;
}

test.each<[string, string, DescriptorTable, readonly string[]]>([
  ['src/hub/hub-options.ts', 'HubConnectionOptions', hubConnectionOptionDescriptors, []],
  ['src/connections/dispatcher-options.ts', 'HttpDispatcherOptions', httpDispatcherOptionDescriptors, []],
  ['src/connections/dispatcher-options.ts', 'HttpServerOptions', httpServerOptionDescriptors, []],
  ['src/redis/redis-options.ts', 'RedisBackplaneOptions', redisOptionDescriptors, []],
  ['src/redis/redis-options.ts', 'RedisPresenceOptions', redisPresenceOptionDescriptors, []],
  ['src/management/management-options.ts', 'ManagementOptions', managementOptionDescriptors, []],
  ['src/options.ts', 'HubRegistration', registrationOptionDescriptors, ['path', 'hub']],
  [
    'src/options.ts',
    'SignalROptions',
    {
      ...pluginOptionDescriptors,
      hubFilters: registrationOptionDescriptors.hubFilters,
      protocols: registrationOptionDescriptors.protocols,
    },
    ['hubs'],
  ],
])(
  '%s: every option of %s has its descriptor’s default in its TSDoc (a required one, none)',
  (file, interfaceName, descriptors, required) => {
    const defaults = tsdocDefaults(file, interfaceName);
    expect([...defaults.keys()].sort()).toEqual([...Object.keys(descriptors), ...required].sort());
    for (const [name, descriptor] of Object.entries(descriptors)) {
      // A required option has no default to document.
      const expected = descriptor.required === true ? undefined : documentedDefault(descriptor);
      expect({ name, default: defaults.get(name) }).toEqual({ name, default: expected });
    }
  },
);
