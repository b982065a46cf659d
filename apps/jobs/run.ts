/**
 * What every job does around its work: check the user and socket address, open the progress
 * socket, give the work a {@link JobReporter}, end with a `finished` event (the output) or a
 * `failed` event (the error, then rethrown), and close the socket. The socket never fails a job.
 */
import { randomUUID } from 'node:crypto';
import { limitsFromEnv, resolveLimits, type Limits } from '../../src/limits.js';
import { JobReporter, type JobKind } from './events.js';
import { ProgressSocket } from './progress-socket.js';
import { checkSockAddr, checkUser } from './request.js';

/** Options every job takes. */
export interface JobOptions {
  /** The job id stamped on every event; default a random UUID. */
  jobId?: string;
  /** Where socket trouble is said (once per job); default stderr. */
  warn?: (message: string) => void;
  /** How long closing the socket may wait for the listener to take the last events (default 2 s). */
  closeTimeoutMs?: number;
  /** Caps on what the request may cost (classes, image pixels), over `FLAME_MAX_*`, over the defaults. */
  limits?: Partial<Limits>;
}

/** The caps a job runs with: `options.limits` over the `FLAME_MAX_*` variables over the defaults. */
export function jobLimits(options: Pick<JobOptions, 'limits'>, env: NodeJS.ProcessEnv = process.env): Limits {
  return resolveLimits({ ...limitsFromEnv(env), ...options.limits });
}

/**
 * Runs `work` as job `kind` for `userUuid`, its events going to the Unix socket `sockAddr` (empty:
 * none). Returns what `work` returns; rethrows what it throws after a `failed` event.
 * @throws BadRequestError when `userUuid` is not a non-empty string or `sockAddr` not a string
 */
export async function runJob<T>(kind: JobKind, userUuid: string, sockAddr: string, options: JobOptions, work: (reporter: JobReporter) => Promise<T>): Promise<T> {
  const user = checkUser(userUuid);
  const addr = checkSockAddr(sockAddr);
  const socket = new ProgressSocket(addr, options.warn);
  const reporter = new JobReporter({ job: options.jobId ?? randomUUID(), user, kind }, socket);
  try {
    const result = await work(reporter);
    reporter.finished(result);
    return result;
  } catch (e) {
    reporter.failed(e);
    throw e;
  } finally {
    await socket.close(options.closeTimeoutMs);
  }
}
