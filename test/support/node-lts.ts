/**
 * The Node.js LTS binaries the suite runs code on besides the Node that runs jest: the exact versions pinned in
 * `scripts/node-lts-versions`, installed from the npm registry into `.tmp/node/<major>/` by `scripts/provision.sh`
 * (which `npm test` and CI run first). Nothing is downloaded here.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../..');

/** One pinned Node.js release and where its binary is. */
export interface LtsNode {
  /** The major version, e.g. 24. */
  readonly major: number;
  /** The exact version, e.g. `24.22.3`. */
  readonly version: string;
  /** The `node` executable. */
  readonly binary: string;
  /** The folder holding it, to put first on a child's PATH. */
  readonly binDirectory: string;
}

const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';

/** Every pinned LTS release, newest line first, failing with what to run if one is not installed. */
export function ltsNodes(): LtsNode[] {
  const versions = readFileSync(path.join(REPO, 'scripts/node-lts-versions'), 'utf8')
    .split('\n')
    .map((line) => line.trim());
  return versions
    .filter((version) => version !== '')
    .map((version) => {
      const major = Number(version.split('.')[0]);
      const binDirectory = path.join(REPO, '.tmp/node', String(major), 'node_modules', `node-linux-${ARCH}`, 'bin');
      const binary = path.join(binDirectory, 'node');
      if (!existsSync(binary)) {
        throw new Error(`Node.js ${version} is not installed at ${binary}: run scripts/provision.sh (npm test does)`);
      }
      return { major, version, binary, binDirectory };
    })
    .sort((a, b) => b.major - a.major);
}

/** The pinned release of one LTS line. */
export function ltsNode(major: number): LtsNode {
  const node = ltsNodes().find((candidate) => candidate.major === major);
  if (node === undefined) throw new Error(`scripts/node-lts-versions pins no Node.js ${major}`);
  return node;
}
