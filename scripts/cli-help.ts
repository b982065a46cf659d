/** Writes docs/cli-help.md from the CLI's own --help texts (`npm run docs:cli`). */
import { writeFileSync } from 'node:fs';
import { cliHelpReference } from '../apps/cli/help-reference.js';

writeFileSync(new URL('../docs/cli-help.md', import.meta.url), cliHelpReference());
console.log('wrote docs/cli-help.md');
