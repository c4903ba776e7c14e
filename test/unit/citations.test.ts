/**
 * Every citation in the repository resolves inside it: a `docs/protocol.md §2.7` names a document that exists and a
 * section that document has, a path to a Markdown file of the repository names a file that exists, and a .NET
 * source is cited by its path and full tag (`src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L200`),
 * never by a short name only the author knew. The rules are in CONTRIBUTING.md ("Citing the protocol").
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SECTION_SIGN = '\u00a7';

/** Folders and files whose text is scanned; generated output and captured data are not. */
const SCANNED_ROOTS = ['src', 'protocol', 'test', 'bench', 'samples', 'docs'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'results', '.build', 'bin', 'obj']);
const SCANNED_EXTENSIONS = /\.(ts|js|mjs|cjs|cs|md)$/;
/**
 * Not scanned: a verbatim copy of the golden capture's description (data, kept byte for byte), and this file, whose
 * examples of broken citations are broken on purpose.
 */
const UNSCANNED = new Set(['test/golden/CAPTURE.md', 'test/unit/citations.test.ts']);

function listFiles(): string[] {
  const files = readdirSync(ROOT).filter((name) => name.endsWith('.md'));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const relative = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(relative);
      } else if (SCANNED_EXTENSIONS.test(entry.name) && !UNSCANNED.has(relative)) {
        files.push(relative);
      }
    }
  };
  for (const dir of SCANNED_ROOTS) walk(dir);
  return files;
}

function isFile(relative: string): boolean {
  try {
    return statSync(path.join(ROOT, relative)).isFile();
  } catch {
    return false;
  }
}

function existsInRepository(relative: string): boolean {
  try {
    statSync(path.join(ROOT, relative));
    return true;
  } catch {
    return false;
  }
}

/** The numbered headings of a Markdown document (`## 2.`, `### 2.7 Client results`), outside code fences. */
function sectionsOf(text: string): string[] {
  const sections: string[] = [];
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s/.exec(line);
    if (heading) sections.push(heading[1]);
  }
  return sections;
}

const SECTION = new RegExp(`${SECTION_SIGN}(\\d+(?:\\.\\d+)*)`, 'g');
/** The document a citation names, right before its first section: `docs/protocol.md §2.7`. */
const DOCUMENT_BEFORE = /`?([\w./-]+\.md)`? $/;
/** Sections of documents outside the repository that keep their own numbering. */
const EXTERNAL_BEFORE = /\bRFC \d+ $/;
/** What may stand between two sections of one citation: `, `, ` and `, `/`, `–`, after an optional parenthesis. */
const CHAIN = new RegExp(
  `^(?:\\s*\\([^()${SECTION_SIGN}]*\\))?\\s*(?:,\\s*(?:and\\s+|or\\s+)?|and\\s+|or\\s+|/|–|-)\\s*$`,
);

/**
 * Short names that once stood for .NET files; a citation spells the path out. Names that are words of their own
 * (`Dispatcher`, `Handshake`) count only with a tag or a line after them; invented ones (`HubCtx`) count anywhere.
 */
const WORD_NAMES = ['Dispatcher', 'NegotiateProtocol', 'HubConnectionHandler', 'Handshake', 'RedisChannels'];
const INVENTED_NAMES = [
  'HttpConnCtx',
  'ConnManager',
  'WsTransport',
  'SseTransport',
  'SseFormatter',
  'LpTransport',
  'DispOptions',
  'HubHandler',
  'HubCtx',
  'HubDispatcher',
  'JsonProto',
  'MsgPackProto',
  'MsgPackWorker',
  'MsgBuffer',
  'RedisHLM',
  'RedisProto',
];
const SHORT_NAME_CITATION = new RegExp(
  `(?<![\\w/.:])(?:${WORD_NAMES.join('|')})(?=@|\\s+L\\d)|(?<![\\w/.:])(?:${INVENTED_NAMES.join('|')})(?![\\w.])` +
    `|(?<![\\w/.:])TS:[A-Z]\\w*`,
  'g',
);
/** `File.cs@v10`: a tag is written out in full (`@v10.0.0`), as git names it. */
const ABBREVIATED_TAG = /\.(?:cs|ts)@v\d+(?:\.\d+)?(?![\w.])/g;
/** Paths of Markdown files that belong to this repository (others, such as .NET's `docs/specs/…@v10.0.0`, do not). */
const MARKDOWN_PATH = /(?<![\w./:-])(\.{1,2}\/)?((?:[\w.-]+\/)*[\w.-]+\.md)(?![\w@])/g;
const REPOSITORY_FOLDERS = /^(?:docs|test|protocol|bench|samples|src)\//;
const EXTERNAL_PATHS = /^src\/(?:SignalR|StackExchange\.Redis)\//;
/** A repository file named in backticks, as the docs name code: `protocol/negotiate.ts`. */
const REPOSITORY_CODE_PATH = /`((?:protocol|src|test|bench|samples)\/[\w./-]+\.(?:ts|js|mjs|cs|json|jsonl))`/g;
/** Documents that live outside every clone; nothing may point there. */
const OUTSIDE_DOCUMENTS = /signalr-wire\.md|shared\/spec\//g;

interface Problem {
  file: string;
  line: number;
  problem: string;
}

/**
 * Resolves a document named in `file` the way a reader would: a path from the repository root, else from the file's
 * folder; a bare file name (`KNOWN-DIFFERENCES.md`) is also looked for in the folders above the file.
 */
function resolveDocument(file: string, named: string): string | undefined {
  const fromRoot = path.posix.normalize(named);
  if (!named.startsWith('.') && isFile(fromRoot)) return fromRoot;
  let folder = path.posix.dirname(file);
  for (;;) {
    const candidate = path.posix.normalize(path.posix.join(folder, named));
    if (isFile(candidate)) return candidate;
    if (named.includes('/') || folder === '.') return undefined;
    folder = path.posix.dirname(folder);
  }
}

/** Every citation problem in one file's text. */
function citationProblems(file: string, text: string, readDocument: (relative: string) => string): Problem[] {
  const problems: Problem[] = [];
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  const sectionCache = new Map<string, Set<string>>();
  const sections = (document: string): Set<string> => {
    let known = sectionCache.get(document);
    if (!known) sectionCache.set(document, (known = new Set(sectionsOf(readDocument(document)))));
    return known;
  };
  // A Markdown document under docs/ may cite its own sections without naming itself.
  const selfDocument = file.startsWith('docs/') && file.endsWith('.md') ? file : undefined;

  let previousEnd = -1;
  let previousDocument: string | null | undefined;
  for (const match of text.matchAll(SECTION)) {
    const index = match.index ?? 0;
    const before = text.slice(Math.max(0, index - 200), index);
    const between = previousEnd >= 0 ? text.slice(previousEnd, index).replace(/\n\s*(?:\*|\/\/|#)?/g, ' ') : undefined;
    previousEnd = index + match[0].length;
    let document: string | null | undefined;
    const named = DOCUMENT_BEFORE.exec(before);
    if (EXTERNAL_BEFORE.test(before)) {
      document = null;
    } else if (named) {
      document = resolveDocument(file, named[1]);
      if (document === undefined) {
        problems.push({ file, line: lineOf(index), problem: `${named[1]} ${match[0]}: no such document` });
        previousDocument = null;
        continue;
      }
    } else if (between !== undefined && CHAIN.test(between)) {
      document = previousDocument;
    } else if (selfDocument) {
      document = selfDocument;
    } else {
      problems.push({
        file,
        line: lineOf(index),
        problem: `${match[0]} names no document (write docs/protocol.md ${match[0]})`,
      });
      previousDocument = null;
      continue;
    }
    previousDocument = document;
    if (document && !sections(document).has(match[1])) {
      problems.push({ file, line: lineOf(index), problem: `${document} has no section ${match[0]}` });
    }
  }

  for (const match of text.matchAll(SHORT_NAME_CITATION)) {
    problems.push({ file, line: lineOf(match.index ?? 0), problem: `${match[0]}: cite the .NET file by its path` });
  }
  for (const match of text.matchAll(ABBREVIATED_TAG)) {
    problems.push({ file, line: lineOf(match.index ?? 0), problem: `${match[0]}: write the tag in full (@v10.0.0)` });
  }
  for (const match of text.matchAll(OUTSIDE_DOCUMENTS)) {
    problems.push({ file, line: lineOf(match.index ?? 0), problem: `${match[0]}: a document outside the repository` });
  }
  // The docs point at code by path; a path that no longer exists sends a reader nowhere.
  if (file.startsWith('docs/')) {
    for (const match of text.matchAll(REPOSITORY_CODE_PATH)) {
      // Another repository's `src/…` shares only the first folder's name with ours.
      const segments = match[1].split('/');
      const ours =
        !EXTERNAL_PATHS.test(match[1]) && (segments.length === 2 || existsInRepository(segments.slice(0, 2).join('/')));
      if (ours && !isFile(match[1])) {
        problems.push({ file, line: lineOf(match.index ?? 0), problem: `${match[1]}: no such file` });
      }
    }
  }
  for (const match of text.matchAll(MARKDOWN_PATH)) {
    const [whole, relativePrefix, named] = match;
    const inRepository =
      relativePrefix !== undefined ||
      /^[A-Z][A-Z-]*\.md$/.test(named) ||
      (REPOSITORY_FOLDERS.test(named) && !EXTERNAL_PATHS.test(named));
    if (inRepository && resolveDocument(file, whole) === undefined) {
      problems.push({ file, line: lineOf(match.index ?? 0), problem: `${whole}: no such document` });
    }
  }
  return problems;
}

const readRepositoryFile = (relative: string): string => readFileSync(path.join(ROOT, relative), 'utf8');

describe('citations', () => {
  test('every citation in the sources and docs resolves inside the repository', () => {
    const files = listFiles();
    // The scan covers the places citations live; an empty list would pass for the wrong reason.
    expect(files).toEqual(expect.arrayContaining(['docs/protocol.md', 'protocol/negotiate.ts', 'ARCHITECTURE.md']));
    const problems = files.flatMap((file) => citationProblems(file, readRepositoryFile(file), readRepositoryFile));
    expect(problems).toEqual([]);
  });

  test('a path in the docs names a file of the repository, or of the repository it is said to be in', () => {
    const text = [
      '| negotiate | `protocol/negotiate.ts`, `protocol/negotiator.ts`, `src/idz.ts` |',
      'MessagePack-CSharp `src/MessagePack.UnityClient/Assets/Scripts/MessagePack/MessagePackWriter.cs`',
    ].join('\n');
    const problems = citationProblems('docs/example.md', text, readRepositoryFile).map(
      (p) => `${p.line}: ${p.problem}`,
    );
    expect(problems).toEqual(['1: protocol/negotiator.ts: no such file', '1: src/idz.ts: no such file']);
  });

  test('the protocol reference numbers each section once', () => {
    const numbers = sectionsOf(readRepositoryFile('docs/protocol.md'));
    expect(numbers).toEqual(expect.arrayContaining(['0', '1', '1.1', '2', '2.10', '3', '3.8', '4', '5', '6']));
    expect(numbers.filter((n, i) => numbers.indexOf(n) !== i)).toEqual([]);
  });

  test('the check names each kind of broken citation', () => {
    const text = [
      `/** Negotiate (docs/protocol.md ${SECTION_SIGN}1.2, ${SECTION_SIGN}1.99 and ${SECTION_SIGN}2.2). */`,
      `// Frames (spec ${SECTION_SIGN}2.1); bare (${SECTION_SIGN}2.5); RFC 6455 ${SECTION_SIGN}5.2 is someone else's.`,
      `// See docs/missing.md ${SECTION_SIGN}1 and [the map](NOWHERE.md).`,
      '// HubDispatcher@v10 L198 and src/SignalR/common/Shared/MessageBuffer.cs@v10 L23; signalr-wire.md.',
      '// Fine: src/SignalR/server/Core/src/HubConnectionHandler.cs@v10.0.0 L200-L261, docs/specs/HubProtocol.md@main.',
      '// MsgPackWorker `ReadStreamIds`; a Dispatcher and a Handshake are words.',
    ].join('\n');
    const problems = citationProblems('src/example.ts', text, readRepositoryFile).map((p) => `${p.line}: ${p.problem}`);
    expect(problems).toEqual([
      `1: docs/protocol.md has no section ${SECTION_SIGN}1.99`,
      `2: ${SECTION_SIGN}2.1 names no document (write docs/protocol.md ${SECTION_SIGN}2.1)`,
      `2: ${SECTION_SIGN}2.5 names no document (write docs/protocol.md ${SECTION_SIGN}2.5)`,
      `3: docs/missing.md ${SECTION_SIGN}1: no such document`,
      '4: HubDispatcher: cite the .NET file by its path',
      '6: MsgPackWorker: cite the .NET file by its path',
      '4: .cs@v10: write the tag in full (@v10.0.0)',
      '4: signalr-wire.md: a document outside the repository',
      '3: docs/missing.md: no such document',
      '3: NOWHERE.md: no such document',
    ]);
  });
});
