import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/dotnet-reference/**/bin/**', 'test/dotnet-reference/**/obj/**', 'bench/results/**', 'bench/.build/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', clearImmediate: 'readonly', queueMicrotask: 'readonly' } },
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
  {
    // The admin page's script runs in browsers, beside the official client's and uPlot's bundles.
    files: ['admin-page/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', URLSearchParams: 'readonly', Option: 'readonly', signalR: 'readonly', uPlot: 'readonly' },
    },
  },
  {
    // Only the Redis connector and bus know ioredis; the rest of the server speaks `BackplaneBus`
    // (src/lifetime/backplane-bus.ts). typescript-eslint's variant of the rule, so that folder rules written with
    // the core `no-restricted-imports` apply beside it rather than replace it.
    files: ['src/**/*.ts', 'protocol/**/*.ts'],
    ignores: ['src/redis/redis-connector.ts', 'src/redis/redis-bus.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'ioredis',
              message: 'Only src/redis/redis-connector.ts and src/redis/redis-bus.ts import ioredis; use the BackplaneBus interface.',
            },
          ],
          patterns: [{ group: ['ioredis/*'], message: 'Only src/redis/redis-connector.ts and src/redis/redis-bus.ts import ioredis.' }],
        },
      ],
    },
  },
);
