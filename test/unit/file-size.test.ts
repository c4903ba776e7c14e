/**
 * A source file past ~600 lines is hard to hold in one's head; one that needs the length says why in its first line
 * (`// Over 600 lines: …`), so a reader knows it was chosen and a reviewer can weigh the reason.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const LIMIT = 600;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

test(`every file of src/ and protocol/ over ${LIMIT} lines gives its reason in its first line`, () => {
  const unexplained = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'protocol'))]
    .map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))
    .filter(({ text }) => text.split('\n').length > LIMIT && !/^\/\/ Over 600 lines: \S/.test(text))
    .map(({ path }) => path);
  expect(unexplained).toEqual([]);
});
