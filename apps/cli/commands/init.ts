/** `flame init NAME`: a new analysis repository (star analysis, simulator test, lint, Dockerfile, CI). */
import type { Command } from 'commander';
import { scaffoldAnalysis } from '../../../src/scaffold/analysis.js';
import { printResult } from '../output.js';

/** Registers `flame init`. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new analysis repository from the template: src/main.ts, a simulator test, ESLint, Prettier, Dockerfile, .ci/run')
    .argument('<name>', 'npm package name of the analysis, also its folder name')
    .option('--dir <parent>', 'create it inside this folder', '.')
    .option('--registry', 'depend on flame-sdk from an npm registry (^version) instead of a packed copy in vendor/')
    .action(async (name: string, opts: { dir: string; registry?: boolean }) => {
      const result = await scaffoldAnalysis({ name, parent: opts.dir, registry: opts.registry });
      if (program.opts().json) return printResult(result, true);
      process.stdout.write(`created ${name} in ${result.dir} (${result.files.length} files; flame-sdk: ${result.sdkDependency})\n\nnext:\n  cd ${result.dir}\n  npm install\n  npm test\n`);
    });
}
