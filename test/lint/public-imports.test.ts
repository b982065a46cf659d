/**
 * The public-surface rule: analyses (and the scaffold `flame init` copies) use flame-sdk by its
 * package names only (`flame-sdk`, `flame-sdk/images`, …), never by a path into src/ — not even to
 * the entry-point files. Linted with the repository's own ESLint config, as `npm run lint` does.
 */
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve('.');

async function problems(code: string, file: string, cwd = root): Promise<string[]> {
  const eslint = new ESLint({ cwd });
  const [result] = await eslint.lintText(code, { filePath: path.join(cwd, file) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('a deep import of src/ in an analysis fails the lint', async () => {
  expect(await problems("import { overLimit } from '../../src/limits.js';\nexport const x = overLimit;\n", 'analyses/image-diagnosis/new-file.ts')).toEqual([
    expect.stringMatching(/analyses import the package by name only: flame-sdk, flame-sdk\/images/),
  ]);
  // The entry-point files by path count as reaching into src/ too.
  expect(await problems("import { FlameSDK } from '../../src/index.js';\nexport const x = FlameSDK;\n", 'analyses/image-diagnosis/new-file.ts')).toHaveLength(1);
  expect(await problems("import { mergeSums } from '../../../src/images/index.js';\nexport const x = mergeSums;\n", 'analyses/image-diagnosis/phases/p.ts')).toHaveLength(1);
  expect(await problems("import type { X } from '../../../src/ml/softmax.js';\nexport type Y = X;\n", 'analyses/image-diagnosis/phases/p.ts')).toHaveLength(1);
  expect(await problems("import { x } from '../../apps/jobs/index.js';\nexport const y = x;\n", 'analyses/image-diagnosis/new-file.ts')).toHaveLength(1);
  expect(await problems("import { FlameSDK } from 'flame-sdk/dist/src/sdk.js';\nexport const x = FlameSDK;\n", 'analyses/x/index.ts')).toHaveLength(1);
});

test('package-name imports and relative imports within the analysis pass', async () => {
  const code = [
    "import { FlameSDK } from 'flame-sdk';",
    "import { mergeSums } from 'flame-sdk/images';",
    "import { averageWeights } from 'flame-sdk/ml';",
    "import { parseRequest } from './request.js';",
    'export const used = [FlameSDK, mergeSums, averageWeights, parseRequest];',
    '',
  ].join('\n');
  expect(await problems(code, 'analyses/image-diagnosis/new-file.ts')).toEqual([]);
});

test('the scaffold bans deep imports of the package too', async () => {
  const cwd = path.join(root, 'templates/analysis');
  expect(await problems("import { FlameSDK } from 'flame-sdk/dist/src/sdk.js';\nexport const x = FlameSDK;\n", 'src/main.ts', cwd)).toHaveLength(1);
  expect(await problems("import { FlameSDK } from 'flame-sdk';\nexport const x = FlameSDK;\n", 'src/main.ts', cwd)).toEqual([]);
});

test('the analyses in the repository keep to the rule', async () => {
  const eslint = new ESLint({ cwd: root });
  const results = await eslint.lintFiles(['analyses/**/*.ts']);
  const bad = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${path.relative(root, r.filePath)}:${m.line}`));
  expect(bad).toEqual([]);
});

test('the core never imports an analysis or an app', async () => {
  expect(await problems("import { diagnose } from '../../analyses/image-diagnosis/index.js';\nexport const x = diagnose;\n", 'src/star/new-file.ts')).toEqual([expect.stringMatching(/src\/ is the core/)]);
  expect(await problems("import { main } from '../apps/cli/program.js';\nexport const x = main;\n", 'src/new-file.ts')).toHaveLength(1);
  const eslint = new ESLint({ cwd: root });
  const results = await eslint.lintFiles(['src/**/*.ts']);
  expect(results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${path.relative(root, r.filePath)}:${m.line}`))).toEqual([]);
});
