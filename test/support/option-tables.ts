/**
 * The README's option tables, written from the option descriptors and the configuration table: the plugin's
 * options, the `redis.*` and `management.*` options and the environment variables. Each table sits in the README between
 * `<!-- table:NAME -->` and `<!-- /table -->`; `test/unit/option-tables.test.ts` fails when one differs from what the
 * code says, and `npm run docs:options` rewrites them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { chatConfigOptions } from '../../samples/chat/app';
import { hubConnectionOptionDescriptors } from '../../src/hub/hub-options';
import { managementOptionDescriptors } from '../../src/management/management-options';
import type { ConfigTable } from '../../src/config';
import { documentedDefault, type DescriptorTable, type OptionDescriptor } from '../../src/shared/option-descriptors';
import { pluginOptionDescriptors, registrationOptionDescriptors } from '../../src/options';
import { redisOptionDescriptors, redisPresenceOptionDescriptors } from '../../src/redis/redis-options';
import { httpDispatcherOptionDescriptors, httpServerOptionDescriptors } from '../../src/connections/dispatcher-options';

export const README = path.resolve(__dirname, '../../README.md');

/** Every descriptor table of the plugin's options, in the order the README lists them. */
export const PLUGIN_OPTION_TABLES: Readonly<Record<string, DescriptorTable>> = {
  hubConnectionOptionDescriptors,
  httpDispatcherOptionDescriptors,
  httpServerOptionDescriptors,
  registrationOptionDescriptors,
  pluginOptionDescriptors,
};

const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** A default as a README cell: plain values in code font (numbers and booleans bare), texts as written. */
function defaultCell(descriptor: OptionDescriptor<unknown>): string {
  const text = documentedDefault(descriptor);
  const plain = descriptor.required === true || descriptor.defaultText !== undefined;
  if (plain || typeof descriptor.default === 'number' || typeof descriptor.default === 'boolean') {
    return cell(text);
  }
  return `\`${text}\``;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

function optionRows(descriptors: DescriptorTable, prefix = ''): string[][] {
  return Object.entries(descriptors).map(([name, descriptor]) => {
    const scope = descriptor.scope === undefined || descriptor.scope === 'every hub' ? '' : ` (${descriptor.scope})`;
    return [`\`${prefix}${name}\`${scope}`, defaultCell(descriptor), cell(descriptor.description)];
  });
}

/** The tables the README holds, by name, as the code describes them. */
export function renderOptionTables(): Record<string, string> {
  return {
    options: table(
      ['option', 'default', 'what it does'],
      Object.values(PLUGIN_OPTION_TABLES).flatMap((descriptors) => optionRows(descriptors)),
    ),
    redis: table(
      ['`redis.*`', 'default', 'what it does'],
      [...optionRows(redisOptionDescriptors), ...optionRows(redisPresenceOptionDescriptors, 'presence.')],
    ),
    management: table(['`management.*`', 'default', 'what it does'], optionRows(managementOptionDescriptors)),
    environment: table(
      ['environment variable', 'key in `CONFIG_FILE`', 'default', 'what it does'],
      Object.entries(chatConfigOptions as ConfigTable).map(([key, option]) => [
        `\`${option.env}\``,
        `\`${key}\``,
        cell(option.defaultText),
        cell(option.description),
      ]),
    ),
  };
}

const BLOCK = /<!-- table:([a-z]+) -->\n([\s\S]*?)\n<!-- \/table -->/g;

/** The tables the README holds now, by name. */
export function readmeTables(readme: string): Record<string, string> {
  return Object.fromEntries([...readme.matchAll(BLOCK)].map((match) => [match[1], match[2]]));
}

/** The README with every table written anew from the code. */
export function rewriteReadme(readme: string): string {
  const tables = renderOptionTables();
  return readme.replace(BLOCK, (whole, name: string) =>
    tables[name] === undefined ? whole : `<!-- table:${name} -->\n${tables[name]}\n<!-- /table -->`,
  );
}

if (require.main === module) {
  writeFileSync(README, rewriteReadme(readFileSync(README, 'utf8')));
}
