/** docs/cli-help.md is generated from the command definitions; this fails when it is out of date. */
import { readFile } from 'node:fs/promises';
import { cliHelpReference } from '../../apps/cli/help-reference.js';

test('docs/cli-help.md matches the CLI (regenerate with npm run docs:cli)', async () => {
  const reference = cliHelpReference();
  // Every command, nested ones included, has a section.
  for (const name of ['flame demo', 'flame simulate diagnose', 'flame results download', 'flame datasets upload', 'flame job diagnose', 'flame worker']) {
    expect(reference).toContain(`## \`${name}\``);
  }
  expect(await readFile('docs/cli-help.md', 'utf8')).toBe(reference);
});
