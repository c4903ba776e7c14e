import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/*
 * Layer boundaries (ARCHITECTURE.md, "The four boundaries"). Flat config keeps one set of options per rule name for
 * a file, so two blocks that both configured `no-restricted-imports` for the same file would replace each other
 * instead of adding up. Each boundary is therefore the same rule — typescript-eslint's `no-restricted-imports`,
 * which also sees `import x = require()` and type-only imports — registered under a name of its own, in a block of
 * its own; test/unit/lint-boundaries.test.ts shows each one failing on a violation.
 */
const restrictedImports = tseslint.plugin.rules['no-restricted-imports'];
const boundaries = {
  meta: { name: 'boundaries' },
  rules: {
    'protocol-standalone': restrictedImports,
    'hub-without-fastify': restrictedImports,
    'lifetime-without-transports': restrictedImports,
    'prom-client-in-metrics': restrictedImports,
  },
};

/*
 * Log events are named once, in src/shared/log-events.ts (`LOG_EVENTS`, the README's Logs table), and written with
 * `logEvent(log, level, name, …)`, which checks name and level against it when compiling. This rule refuses the
 * other way of writing one, an `event: '…'` property spelled out at a call site.
 */
const logging = {
  meta: { name: 'logging' },
  rules: {
    'events-from-catalogue': {
      meta: {
        type: 'problem',
        schema: [],
        messages: {
          spelledOut:
            'Log events are named in src/shared/log-events.ts (LOG_EVENTS): write the line with logEvent(log, level, name, fields, message).',
        },
      },
      create(context) {
        const isEventKey = (key) =>
          (key.type === 'Identifier' && key.name === 'event') || (key.type === 'Literal' && key.value === 'event');
        const isText = (value) =>
          (value.type === 'Literal' && typeof value.value === 'string') || value.type === 'TemplateLiteral';
        return {
          Property(node) {
            if (!node.computed && isEventKey(node.key) && isText(node.value))
              context.report({ node: node.value, messageId: 'spelledOut' });
          },
        };
      },
    },
  },
};

/** Imports that would leave protocol/ for another folder of this repository, from any depth inside it. */
const OUR_FOLDERS = '^(\\.\\./)+(src|test|bench|samples|scripts|emitter)(/|$)';
/** Imports of src/transports/ from a sibling folder of src/. */
const TRANSPORTS_FOLDER = '^(\\.\\./)+transports(/|$)';
/** Fastify, its plugins and the plugin helper. */
const FASTIFY_PATHS = ['fastify', 'fastify-plugin'];
const FASTIFY_PATTERNS = ['@fastify/*', 'fastify-*'];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'test/dotnet-reference/**/bin/**',
      'test/dotnet-reference/**/obj/**',
      'bench/results/**',
      'bench/.build/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        clearImmediate: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  { plugins: { boundaries, logging } },
  {
    files: ['src/**/*.ts', 'samples/**/*.ts'],
    ignores: ['src/shared/log-events.ts'],
    rules: { 'logging/events-from-catalogue': 'error' },
  },
  // The wire protocol is pure: bytes in, messages out, no I/O, no clock, nothing of the server around it.
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'boundaries/protocol-standalone': [
        'error',
        {
          paths: [...FASTIFY_PATHS, 'ws', 'ioredis', 'fastify-signalr'].map((name) => ({
            name,
            message: 'protocol/ is the wire format alone: it knows no server library.',
          })),
          patterns: [
            { group: FASTIFY_PATTERNS, message: 'protocol/ is the wire format alone: it knows no server library.' },
            { regex: OUR_FOLDERS, message: 'protocol/ imports nothing of this repository outside protocol/.' },
            {
              regex: '^(node:)?(net|tls|http|https|http2|dgram|fs|fs/promises|child_process|worker_threads)$',
              message: 'protocol/ does no I/O: the transports and the Redis bus do.',
            },
          ],
        },
      ],
    },
  },
  // The hub runtime is written against HttpConnection and plain data (the request snapshot, the user id, the
  // authentication expiry) that src/transports/ reads off the Fastify request for it.
  {
    files: ['src/hub/**/*.ts'],
    rules: {
      'boundaries/hub-without-fastify': [
        'error',
        {
          paths: [...FASTIFY_PATHS, 'ws'].map((name) => ({
            name,
            message: 'src/hub knows no Fastify and no transport: take plain data from src/transports/ instead.',
          })),
          patterns: [
            {
              group: FASTIFY_PATTERNS,
              message: 'src/hub knows no Fastify: take plain data from src/transports/ instead.',
            },
            {
              regex: TRANSPORTS_FOLDER,
              message: 'src/hub sits beneath the transports: they call it, never the reverse.',
            },
          ],
        },
      ],
    },
  },
  // Routing (who is connected, groups, delivery, presence) and the Redis backplane beneath it serve any transport.
  {
    files: ['src/lifetime/**/*.ts', 'src/redis/**/*.ts'],
    rules: {
      'boundaries/lifetime-without-transports': [
        'error',
        {
          paths: [...FASTIFY_PATHS, 'ws'].map((name) => ({
            name,
            message: 'Lifetime managers and the backplane know no Fastify and no transport.',
          })),
          patterns: [
            {
              group: FASTIFY_PATTERNS,
              message: 'Lifetime managers and the backplane know no Fastify and no transport.',
            },
            { regex: TRANSPORTS_FOLDER, message: 'Lifetime managers and the backplane know no transport.' },
          ],
        },
      ],
    },
  },
  // Metrics are opt-in: only the metrics plugin loads prom-client, so a server without it never does.
  {
    files: ['src/**/*.ts', 'protocol/**/*.ts', 'samples/**/*.ts'],
    ignores: ['src/operations/metrics.ts'],
    rules: {
      'boundaries/prom-client-in-metrics': [
        'error',
        {
          paths: [
            {
              name: 'prom-client',
              message: 'Only src/operations/metrics.ts imports prom-client: read counters from HubStats instead.',
            },
          ],
        },
      ],
    },
  },
  {
    // The admin page's script runs in browsers, beside the official client's and uPlot's bundles.
    files: ['admin-page/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        URLSearchParams: 'readonly',
        Option: 'readonly',
        signalR: 'readonly',
        uPlot: 'readonly',
      },
    },
  },
  {
    // Only the Redis connector, the two buses and the sharded subscriptions know ioredis; the rest of the server
    // speaks `BackplaneBus` (src/lifetime/backplane-bus.ts). typescript-eslint's variant of the rule, so that folder rules written with
    // the core `no-restricted-imports` apply beside it rather than replace it.
    files: ['src/**/*.ts', 'protocol/**/*.ts'],
    ignores: [
      'src/redis/redis-connector.ts',
      'src/redis/redis-bus.ts',
      'src/redis/shard-subscribers.ts',
      'src/redis/streams-bus.ts',
    ],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'ioredis',
              message:
                'Only src/redis/redis-connector.ts, src/redis/redis-bus.ts, src/redis/shard-subscribers.ts and src/redis/streams-bus.ts import ioredis; use the BackplaneBus interface.',
            },
          ],
          patterns: [
            {
              group: ['ioredis/*'],
              message:
                'Only src/redis/redis-connector.ts, src/redis/redis-bus.ts, src/redis/shard-subscribers.ts and src/redis/streams-bus.ts import ioredis.',
            },
          ],
        },
      ],
    },
  },
);
