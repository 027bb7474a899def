import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    setupFiles: ['test/setup.ts'],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // Figures of 2026-11-23 in a fresh clone, rounded down (lines 89.06, functions 90.63, branches 82.80,
      // statements 87.68 %; lines kept a point lower): coverage may rise, not fall.
      // Code run only in spawned processes (dist/cli/main.js) is not counted.
      thresholds: {
        lines: 88,
        functions: 90,
        branches: 82,
        statements: 87,
      },
    },
  },
});
