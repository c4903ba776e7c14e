/**
 * Lints source text with the repository's own ESLint configuration, as if it were a file at a given path (nothing
 * is written to disk), for tests of the lint rules themselves. ESLint loads its configuration with a dynamic
 * `import()`, which Jest's module sandbox refuses, so one Node process with one ESLint instance lints every snippet
 * of a call and prints the messages.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** Source text and the repository path it is linted as. */
export interface LintSnippet {
  readonly filePath: string;
  readonly code: string;
}

/** One message ESLint reported. */
export interface LintMessage {
  readonly ruleId: string | null;
  readonly message: string;
  readonly fatal?: boolean;
}

const LINT_SNIPPETS = `
  import { ESLint } from 'eslint';
  import { readFileSync } from 'node:fs';
  const snippets = JSON.parse(readFileSync(0, 'utf8'));
  const eslint = new ESLint({ cwd: process.cwd() });
  const results = [];
  for (const { filePath, code } of snippets) {
    const [result] = await eslint.lintText(code, { filePath });
    results.push(result.messages.map(({ ruleId, message, fatal }) => ({ ruleId, message, fatal })));
  }
  process.stdout.write(JSON.stringify(results));
`;

/** The messages ESLint reports for each snippet, in order. */
export function lintSnippets(snippets: readonly LintSnippet[]): LintMessage[][] {
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', LINT_SNIPPETS], {
    cwd: ROOT,
    input: JSON.stringify(snippets),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(output) as LintMessage[][];
}
