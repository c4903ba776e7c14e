/**
 * The scenario tables themselves: every table in `scenarios/` is run by a test file, names are unique (they are the
 * test names), every known difference a scenario names is explained in KNOWN-DIFFERENCES.md, and every entry there
 * is still shown by a scenario.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { knownDifferenceEntries } from './engine/suite';
import { TABLES } from './engine/tables';

/** Files of `scenarios/` that hold building blocks rather than a table. */
const HELPERS = ['frames'];

test('every scenario table is listed here and run by its test file', () => {
  const tables = fs
    .readdirSync(path.join(__dirname, 'scenarios'))
    .map((file) => file.replace(/\.ts$/, ''))
    .filter((name) => !HELPERS.includes(name));
  expect(tables.sort()).toEqual(Object.keys(TABLES).sort());
  for (const table of tables) expect(fs.existsSync(path.join(__dirname, `${table}.test.ts`))).toBe(true);
});

test.each(Object.entries(TABLES))('scenario names in %s are unique', (_table, scenarios) => {
  const names = scenarios.map((scenario) => scenario.name);
  expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
});

test('every known difference a scenario names is explained in KNOWN-DIFFERENCES.md', () => {
  const entries = knownDifferenceEntries();
  const named = Object.values(TABLES)
    .flat()
    .flatMap((scenario) => (scenario.knownDifference ? [scenario.knownDifference.entry] : []));
  expect(named.filter((entry) => !entries.has(entry))).toEqual([]);
});

test('every entry of KNOWN-DIFFERENCES.md is shown by a scenario', () => {
  const shown = new Set(
    Object.values(TABLES)
      .flat()
      .flatMap((scenario) => (scenario.knownDifference ? [scenario.knownDifference.entry] : [])),
  );
  expect([...knownDifferenceEntries()].filter((entry) => !shown.has(entry))).toEqual([]);
});
