/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 30000,
  // The suites wait on sockets and child processes more than on CPU: one worker per core keeps CI short.
  maxWorkers: '100%',
  // Only the conformance suite runs tests concurrently: its scenarios mostly wait (for timeouts, polls, silence),
  // so ten at a time keep each table short without loading the machine much more.
  maxConcurrency: 10,
};
