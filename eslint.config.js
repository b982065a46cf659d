// ESLint flat config. The scaffold `flame init` copies (templates/analysis/eslint.config.js) has the same rules.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Analyses are written as an outside author would: on the package's names only (`flame-sdk`, `flame-sdk/images`, …). */
const analysesPackageImportsOnly = {
  // In this checkout those names resolve to the TypeScript sources (package.json's flame-source
  // condition, set for npm scripts in .npmrc), so no path into src/, dist/ or apps/ is needed.
  group: ['**/src/**', '**/dist/**', '**/apps/**', 'flame-sdk/src/*', 'flame-sdk/dist/*'],
  message: "analyses import the package by name only: flame-sdk, flame-sdk/images, flame-sdk/ml, flame-sdk/testing (see docs/architecture.md)",
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
  { files: ['analyses/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [analysesPackageImportsOnly] }] } },
);
