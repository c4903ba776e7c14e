// Puts the admin page beside the compiled code (dist/admin-page/), with the browser bundles it loads — the official
// SignalR client and uPlot — copied from node_modules, so installations without dev dependencies serve them too.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const target = path.join(root, 'dist', 'admin-page');
mkdirSync(path.join(target, 'lib'), { recursive: true });
for (const file of ['index.html', 'admin.js', 'admin.css'])
  copyFileSync(path.join(root, 'admin-page', file), path.join(target, file));
for (const module of [
  '@microsoft/signalr/dist/browser/signalr.min.js',
  'uplot/dist/uPlot.iife.min.js',
  'uplot/dist/uPlot.min.css',
]) {
  copyFileSync(require.resolve(module), path.join(target, 'lib', path.basename(module)));
}
