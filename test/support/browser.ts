/**
 * Headless Chromium for browser tests: Debian's `chromium` driven by `playwright-core`, which downloads nothing.
 * The flags keep Chromium off the network it cannot reach here (background services, component updates).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where Debian installs Chromium; `.ci/run` installs it when missing. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches a fresh headless Chromium; close it in `afterAll`. */
export async function launchBrowser(): Promise<Browser> {
  // A failed launch leaves profile folders in the temp dir; keep them inside the project's ignored `.tmp`.
  const tmp = path.resolve(__dirname, '../../.tmp/browser');
  mkdirSync(tmp, { recursive: true });
  process.env.TMPDIR = tmp;
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS });
}
