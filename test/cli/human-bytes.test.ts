/** Sizes in tables are for people. */
import { humanBytes } from '../../apps/cli/output.js';

test('byte counts read as sizes', () => {
  expect([0, 512, 1536, 5 * 1024 * 1024, 3.25 * 1024 ** 3].map(humanBytes)).toEqual(['0 B', '512 B', '1.5 KiB', '5.0 MiB', '3.3 GiB']);
});
