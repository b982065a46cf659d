/** Locate files shipped with this package, whether it runs from src/ (tsx) or dist/src/ (compiled). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding this package's package.json. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('flame-sdk: cannot find the package root (no package.json above the code)');
    dir = up;
  }
  root = dir;
  return dir;
}

/** A path inside the package, e.g. `packagePath('data', 'example')`. */
export function packagePath(...parts: string[]): string {
  return path.join(packageRoot(), ...parts);
}
