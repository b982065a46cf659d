/** Reading a JSON file given on the command line, with errors that name the option and the file. */
import { readFile } from 'node:fs/promises';
import { BadRequestError, NotFoundError } from '../../errors.js';

/**
 * Parse the JSON file `file`; `what` names it in errors (e.g. `--request`).
 * @throws NotFoundError if it does not exist; BadRequestError if it cannot be read or is not JSON
 */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`${what} ${file} does not exist`, { cause: e });
    throw new BadRequestError(`${what} ${file} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequestError(`${what} ${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
