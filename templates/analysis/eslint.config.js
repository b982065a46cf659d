// ESLint flat config: the same rules as flame-sdk itself.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'vendor/'] },
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
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // flame-sdk's entry points only (flame-sdk, flame-sdk/images, flame-sdk/ml, flame-sdk/testing, …).
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['flame-sdk/src/*', 'flame-sdk/dist/*'],
              message: 'import flame-sdk or one of its documented entry points, not its files',
            },
          ],
        },
      ],
    },
  },
);
