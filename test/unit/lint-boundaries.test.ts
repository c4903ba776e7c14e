/**
 * The layer boundaries of eslint.config.mjs, and the rule that log events come from their catalogue, fail on a
 * violation: small snippets, linted as if they were files of a folder (`lintText(code, { filePath })`, nothing
 * written to disk), with the repository's real configuration. That the real tree keeps them is `npm run lint`.
 */
import { lintSnippets, type LintMessage, type LintSnippet as Snippet } from '../support/lint';

/** A file that imports `source` and uses what it imports, so only boundary rules can object to it. */
function importing(filePath: string, source: string): Snippet {
  return { filePath, code: `import * as imported from '${source}';\nexport const used = imported;\n` };
}

/** A file that logs one line with `statement`, given a logger `log`. */
function logging(filePath: string, statement: string): Snippet {
  return {
    filePath,
    code: `export function report(log: { warn(o: object, m: string): void; info(o: object, m: string): void }): void {\n${statement}\n}\n`,
  };
}

interface Case {
  readonly name: string;
  readonly snippet: Snippet;
  /** The rule and its message, or `null` where the snippet is allowed. */
  readonly expected: { readonly ruleId: string; readonly message: string } | null;
}

const SERVER_LIBRARY = 'protocol/ is the wire format alone: it knows no server library.';
const PROTOCOL_OURS = 'protocol/ imports nothing of this repository outside protocol/.';
const HUB_FASTIFY = 'src/hub knows no Fastify and no transport: take plain data from src/transports/ instead.';
const LIFETIME_FASTIFY = 'Lifetime managers and the backplane know no Fastify and no transport.';
const SPELLED_OUT =
  'Log events are named in src/shared/log-events.ts (LOG_EVENTS): write the line with logEvent(log, level, name, fields, message).';
const PROM_CLIENT = 'Only src/operations/metrics.ts imports prom-client: read counters from HubStats instead.';

/** ESLint's wording around a configured message: `'<source>' import is restricted from being used…: <message>`. */
const restricted = (source: string, message: string) => `'${source}' import is restricted from being used. ${message}`;
const restrictedPattern = (source: string, message: string) =>
  `'${source}' import is restricted from being used by a pattern. ${message}`;

const CASES: readonly Case[] = [
  {
    name: 'protocol/ importing fastify',
    snippet: importing('protocol/x.ts', 'fastify'),
    expected: { ruleId: 'boundaries/protocol-standalone', message: restricted('fastify', SERVER_LIBRARY) },
  },
  {
    name: 'protocol/ importing ioredis',
    snippet: importing('protocol/redis/x.ts', 'ioredis'),
    expected: { ruleId: 'boundaries/protocol-standalone', message: restricted('ioredis', SERVER_LIBRARY) },
  },
  {
    name: 'protocol/ importing ws',
    snippet: importing('protocol/x.ts', 'ws'),
    expected: { ruleId: 'boundaries/protocol-standalone', message: restricted('ws', SERVER_LIBRARY) },
  },
  {
    name: 'protocol/ importing a Fastify plugin',
    snippet: importing('protocol/x.ts', '@fastify/websocket'),
    expected: {
      ruleId: 'boundaries/protocol-standalone',
      message: restrictedPattern('@fastify/websocket', SERVER_LIBRARY),
    },
  },
  {
    name: 'protocol/ importing src/',
    snippet: importing('protocol/x.ts', '../src/hub/hub'),
    expected: { ruleId: 'boundaries/protocol-standalone', message: restrictedPattern('../src/hub/hub', PROTOCOL_OURS) },
  },
  {
    name: 'protocol/redis importing test/',
    snippet: importing('protocol/redis/x.ts', '../../test/support/redis-server'),
    expected: {
      ruleId: 'boundaries/protocol-standalone',
      message: restrictedPattern('../../test/support/redis-server', PROTOCOL_OURS),
    },
  },
  {
    name: 'protocol/ opening a socket',
    snippet: importing('protocol/x.ts', 'node:net'),
    expected: {
      ruleId: 'boundaries/protocol-standalone',
      message: restrictedPattern('node:net', 'protocol/ does no I/O: the transports and the Redis bus do.'),
    },
  },
  {
    name: 'protocol/redis importing protocol/',
    snippet: importing('protocol/redis/x.ts', '../messages'),
    expected: null,
  },
  { name: 'protocol/ importing node:crypto', snippet: importing('protocol/x.ts', 'node:crypto'), expected: null },
  {
    name: 'src/hub importing a Fastify type',
    snippet: {
      filePath: 'src/hub/x.ts',
      code: "import type { FastifyRequest } from 'fastify';\nexport type R = FastifyRequest;\n",
    },
    expected: { ruleId: 'boundaries/hub-without-fastify', message: restricted('fastify', HUB_FASTIFY) },
  },
  {
    name: 'src/hub requiring fastify',
    snippet: { filePath: 'src/hub/x.ts', code: "import fastify = require('fastify');\nexport const f = fastify;\n" },
    expected: { ruleId: 'boundaries/hub-without-fastify', message: restricted('fastify', HUB_FASTIFY) },
  },
  {
    name: 'src/hub importing a Fastify plugin',
    snippet: importing('src/hub/x.ts', '@fastify/websocket'),
    expected: {
      ruleId: 'boundaries/hub-without-fastify',
      message: restrictedPattern(
        '@fastify/websocket',
        'src/hub knows no Fastify: take plain data from src/transports/ instead.',
      ),
    },
  },
  {
    name: 'src/hub importing a transport',
    snippet: importing('src/hub/x.ts', '../transports/connection-request'),
    expected: {
      ruleId: 'boundaries/hub-without-fastify',
      message: restrictedPattern(
        '../transports/connection-request',
        'src/hub sits beneath the transports: they call it, never the reverse.',
      ),
    },
  },
  {
    name: 'src/hub importing the lifetime interface',
    snippet: importing('src/hub/x.ts', '../lifetime/hub-lifetime-manager'),
    expected: null,
  },
  { name: 'src/transports importing fastify', snippet: importing('src/transports/x.ts', 'fastify'), expected: null },
  {
    name: 'src/lifetime importing fastify',
    snippet: importing('src/lifetime/x.ts', 'fastify'),
    expected: { ruleId: 'boundaries/lifetime-without-transports', message: restricted('fastify', LIFETIME_FASTIFY) },
  },
  {
    name: 'src/lifetime importing a transport',
    snippet: importing('src/lifetime/x.ts', '../transports/cors'),
    expected: {
      ruleId: 'boundaries/lifetime-without-transports',
      message: restrictedPattern('../transports/cors', 'Lifetime managers and the backplane know no transport.'),
    },
  },
  {
    name: 'src/redis importing ws',
    snippet: importing('src/redis/x.ts', 'ws'),
    expected: { ruleId: 'boundaries/lifetime-without-transports', message: restricted('ws', LIFETIME_FASTIFY) },
  },
  {
    name: 'src/lifetime importing a Fastify plugin',
    snippet: importing('src/lifetime/x.ts', '@fastify/websocket'),
    expected: {
      ruleId: 'boundaries/lifetime-without-transports',
      message: restrictedPattern('@fastify/websocket', LIFETIME_FASTIFY),
    },
  },
  {
    name: 'src/hub importing prom-client',
    snippet: importing('src/hub/x.ts', 'prom-client'),
    expected: { ruleId: 'boundaries/prom-client-in-metrics', message: restricted('prom-client', PROM_CLIENT) },
  },
  {
    name: 'protocol/ importing prom-client',
    snippet: importing('protocol/x.ts', 'prom-client'),
    expected: { ruleId: 'boundaries/prom-client-in-metrics', message: restricted('prom-client', PROM_CLIENT) },
  },
  {
    name: 'src/operations/metrics.ts importing prom-client',
    snippet: importing('src/operations/metrics.ts', 'prom-client'),
    expected: null,
  },
  {
    name: 'a log event spelled out in src/',
    snippet: logging('src/hub/x.ts', "log.warn({ event: 'signalr.connection.slow_client', limit: 1 }, 'slow');"),
    expected: { ruleId: 'logging/events-from-catalogue', message: SPELLED_OUT },
  },
  {
    name: 'a log event built from a template in src/',
    snippet: logging(
      'src/lifetime/x.ts',
      "const what = 'subscribe';\nlog.warn({ event: `signalr.backplane.${what}_failed` }, 'failed');",
    ),
    expected: { ruleId: 'logging/events-from-catalogue', message: SPELLED_OUT },
  },
  {
    name: 'a log event spelled out in the sample',
    snippet: logging('samples/chat/x.ts', "log.info({ 'event': 'signalr.server.started' }, 'started');"),
    expected: { ruleId: 'logging/events-from-catalogue', message: SPELLED_OUT },
  },
  {
    name: 'a log event written with logEvent',
    snippet: {
      filePath: 'src/hub/x.ts',
      code:
        "import { logEvent, type Logger } from '../log-events';\n" +
        "export function report(log: Logger): void {\n  logEvent(log, 'warn', 'signalr.connection.slow_client', { limit: 1 }, 'slow');\n}\n",
    },
    expected: null,
  },
];

/** The plugins of eslint.config.mjs whose rules these cases are about. */
const OUR_RULES = ['boundaries/', 'logging/'];

let results: LintMessage[][];

beforeAll(() => {
  results = lintSnippets(CASES.map((entry) => entry.snippet));
}, 60_000);

test.each(CASES.map((entry, index) => [entry.name, index] as const))('%s', (_name, index) => {
  const messages = results[index];
  expect(messages.filter((message) => message.fatal)).toEqual([]);
  const boundaryMessages = messages
    .filter((message) => OUR_RULES.some((prefix) => message.ruleId?.startsWith(prefix)))
    .map(({ ruleId, message }) => ({ ruleId, message }));
  const { expected } = CASES[index];
  expect(boundaryMessages).toEqual(expected === null ? [] : [expected]);
  // What is allowed is allowed by the whole configuration, not just by these rules.
  if (expected === null) expect(messages).toEqual([]);
});
