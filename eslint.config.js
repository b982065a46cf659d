// ESLint flat config. The scaffold `flame init` copies (templates/analysis/eslint.config.js) has the same rules.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Analyses are written as an outside author would: on the package's entry points only. */
const analysesEntryPointsOnly = {
  // File patterns, not folders: a file under an excluded folder could not be let back in. Inside this
  // repository the entry points are files: src/index.js = flame-sdk, src/images/index.js =
  // flame-sdk/images, src/ml/index.js = flame-sdk/ml, src/testing/index.js = flame-sdk/testing.
  group: [
    '**/src/*.js',
    '!**/src/index.js',
    '**/src/*/*.js',
    '!**/src/images/index.js',
    '!**/src/ml/index.js',
    '!**/src/testing/index.js',
    '**/src/*/*/**',
    '**/dist/**',
    '**/apps/**',
    'flame-sdk/src/*',
    'flame-sdk/dist/*',
  ],
  message: "analyses use the package's entry points only: src/index.js (flame-sdk), src/images/index.js, src/ml/index.js, src/testing/index.js (see docs/architecture.md)",
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'templates/', 'docs/api/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
      // This folder's tsconfig, also when another config (the scaffold's, the repository's) was loaded in the same process.
      parserOptions: { tsconfigRootDir: path.dirname(fileURLToPath(import.meta.url)) },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['test/**/*.ts', 'bench/**/*.ts'], languageOptions: { globals: { ...globals.jest } } },
  {
    // The core is below the analyses and the apps: it never imports them.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/analyses/**', '**/apps/**'], message: 'src/ is the core: analyses and apps build on it, never the other way (docs/architecture.md)' }] }],
    },
  },
  { files: ['analyses/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [analysesEntryPointsOnly] }] } },
);
