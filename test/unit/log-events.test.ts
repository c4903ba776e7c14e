/**
 * The log event catalogue (`LOG_EVENTS`, src/shared/log-events.ts) is what operators read in the README's Logs table, row
 * for row, and what the server writes: every catalogued event is written somewhere, and `logEvent` writes a line
 * with its `event` field at the level asked for through a real Fastify (pino) logger. That no call site names an
 * event outside the catalogue is the compiler's (`logEvent` takes catalogue names and levels only) and lint's
 * (`logging/events-from-catalogue`, shown failing in lint-boundaries.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { LOG_EVENTS, logEvent, type LogEventName } from '../../src/shared/log-events';

const ROOT = path.resolve(__dirname, '../..');

/** The rows of the table under the README's `### Logs` heading, as `[event, level, when]` cells. */
function readmeLogRows(): string[][] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n### Logs\n'));
  const lines = section.split('\n');
  const header = lines.findIndex((line) => line.startsWith('| event |'));
  expect(header).toBeGreaterThan(0);
  const rows: string[][] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(' | ')
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** The catalogue as the README writes it. */
function catalogueRows(): string[][] {
  return Object.entries(LOG_EVENTS).map(([name, entry]) => [`\`${name}\``, entry.levels.join(', '), entry.meaning]);
}

test("the README's Logs table is the catalogue, row for row", () => {
  const expected = catalogueRows();
  const rows = readmeLogRows();
  // On a mismatch, the table to paste into the README.
  const table = expected.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
  expect({ rows, table }).toEqual({ rows: expected, table });
});

test('the catalogue names the events the README promised and was missing', () => {
  expect(Object.keys(LOG_EVENTS)).toEqual(
    expect.arrayContaining(['signalr.shutdown.forced', 'signalr.shutdown.failed', 'signalr.backplane.info']),
  );
});

/** The text of every TypeScript file under the given folders, by path. */
function sources(...folders: string[]): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(path.join(ROOT, folder), { withFileTypes: true })) {
      const relative = `${folder}/${entry.name}`;
      if (entry.isDirectory()) walk(relative);
      else if (entry.name.endsWith('.ts')) files.set(relative, readFileSync(path.join(ROOT, relative), 'utf8'));
    }
  };
  for (const folder of folders) walk(folder);
  return files;
}

test('every catalogued event is written by the server or the chat sample', () => {
  const code = [...sources('src', 'samples')]
    .filter(([file]) => file !== 'src/shared/log-events.ts')
    .map(([, text]) => text);
  const unused = Object.keys(LOG_EVENTS).filter((name) => !code.some((text) => text.includes(`'${name}'`)));
  expect(unused).toEqual([]);
});

test('logEvent writes the event, the fields and the message at the level asked for', async () => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  try {
    const name: LogEventName = 'signalr.backplane.subscribe_failed';
    logEvent(app.log, 'warn', name, { channel: 'chat:all' }, 'a subscribe failed');
    logEvent(app.log, 'error', name, { failed: 2 }, 'channels not subscribed again');
    logEvent(app.log, 'info', 'signalr.shutdown.completed', { exitCode: 0 }, 'shut down');
    expect(
      lines.map(({ level, event, msg, channel, failed, exitCode }) => ({
        level,
        event,
        msg,
        channel,
        failed,
        exitCode,
      })),
    ).toEqual([
      {
        level: 40,
        event: name,
        msg: 'a subscribe failed',
        channel: 'chat:all',
        failed: undefined,
        exitCode: undefined,
      },
      {
        level: 50,
        event: name,
        msg: 'channels not subscribed again',
        channel: undefined,
        failed: 2,
        exitCode: undefined,
      },
      {
        level: 30,
        event: 'signalr.shutdown.completed',
        msg: 'shut down',
        channel: undefined,
        failed: undefined,
        exitCode: 0,
      },
    ]);
  } finally {
    await app.close();
  }
});
