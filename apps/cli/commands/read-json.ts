/** Reading a file given on the command line, with errors that name the option and the file. */
import { readFile } from 'node:fs/promises';
import { BadRequestError, FlameError, NotFoundError } from '../../../src/errors.js';

/**
 * The text of `file`; `what` names it in errors (e.g. `--request`).
 * @throws NotFoundError if it does not exist; BadRequestError if it cannot be read
 */
export async function readTextFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`${what} ${file} does not exist`, { cause: e });
    throw new BadRequestError(`${what} ${file} cannot be read: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Parse the JSON file `file`; `what` names it in errors (e.g. `--request`).
 * @throws NotFoundError if it does not exist; BadRequestError if it cannot be read or is not JSON
 */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  const text = await readTextFile(file, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequestError(`${what} ${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Runs `work`, prefixing the errors about the request (`request.tasks: …`) with the request file,
 * so `flame diagnose` and `flame job …` word a bad request file alike: `--request r.json: request.tasks: …`.
 */
export async function namingRequestFile<T>(file: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof FlameError && e.message.startsWith('request')) e.message = `--request ${file}: ${e.message}`;
    throw e;
  }
}

/** The prefix that names a final result on the hub instead of a file: `hub:<result id>`. */
export const HUB_PREFIX = 'hub:';

/**
 * A result given on the command line: a JSON file, or `hub:<id>` for a final result of the analysis
 * (FLAME_* configuration), read through the result service with its signature checked.
 */
export async function readResultArg(arg: string, what: string): Promise<unknown> {
  if (!arg.startsWith(HUB_PREFIX)) return readJsonFile(arg, what);
  const id = arg.slice(HUB_PREFIX.length);
  const { FlameSDK } = await import('../../../src/sdk.js');
  const sdk = await FlameSDK.connect({ logLevel: 'warn' }, { observer: true });
  try {
    return await sdk.results.getResult(id);
  } finally {
    await sdk.close();
  }
}
