/** The version of this package, read once from its package.json. */
import fs from 'node:fs';
import { packagePath } from '../../src/package-root.js';

let version: string | undefined;

/** flame-sdk's version (package.json). */
export function packageVersion(): string {
  version ??= (JSON.parse(fs.readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
  return version;
}
