// @ts-check
// Flat config. TypeScript (src/, test/, vitest.config.ts) gets typescript-eslint's
// recommendedTypeChecked rules through the project service (tsconfig.json). Plain JS
// (perf/*.mjs, test/vectors/generate.mjs, the root config files) is linted with the
// recommended rules only: it is not part of any tsconfig, so no type information.
// eslint-config-prettier goes last so that no formatting rule fights Prettier.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['dist/', 'coverage/', '.depcheck-*/', 'node_modules/', 'data/', 'perf/results/', 'test/vectors/*.json'],
  },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    // Async without await on purpose: the Store contract returns promises over a synchronous
    // SQLite (a PostgreSQL backend will need them), and `async` turns a throw into a
    // rejection; Fastify's async handlers do the same for the error handler.
    files: ['src/store/**/*.ts', 'src/http/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  prettier,
);
