/**
 * The one way this SDK builds an S3 client (hub and local storage, S3 data sources, dataset
 * uploads): path-style addressing when an endpoint is given, static credentials or the default AWS
 * chain, self-signed TLS only when asked for, and checksums only where S3 requires them.
 */
import https from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Connection } from '../data/port.js';
import { BadRequestError } from '../errors.js';

/** Options of {@link makeS3Client} beyond the connection. */
export interface S3ClientOptions {
  /** Where the insecure-TLS warning goes; default stderr, once per process. */
  onWarning?: (message: string) => void;
}

let warnedInsecure = false;

/**
 * Builds an S3 client for a connection. Without keys the SDK's default credential chain is used
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles); a chain that finds nothing
 * fails on the first request, which {@link s3Error} maps to an UnauthorizedError naming what to set.
 * @throws BadRequestError when the region is missing or only one of the two keys is given
 */
export function makeS3Client(conn: S3Connection, options: S3ClientOptions = {}): S3Client {
  const bucket = JSON.stringify(conn.bucket);
  if (!conn.region) throw new BadRequestError(`S3 connection to bucket ${bucket}: region is required`);
  const config: S3ClientConfig = {
    region: conn.region,
    forcePathStyle: conn.forcePathStyle ?? conn.endpoint !== undefined,
    // S3-compatible servers (MinIO, SeaweedFS, s3rver) often reject the newer streaming checksums
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (conn.endpoint !== undefined) config.endpoint = conn.endpoint;
  if (conn.accessKeyId !== undefined || conn.secretAccessKey !== undefined) {
    if (!conn.accessKeyId || !conn.secretAccessKey) {
      throw new BadRequestError(`S3 connection to bucket ${bucket}: give both accessKeyId and secretAccessKey, or neither`);
    }
    config.credentials = { accessKeyId: conn.accessKeyId, secretAccessKey: conn.secretAccessKey };
  }
  if (conn.insecure) {
    const warning = `warning: TLS certificate checks are OFF for S3 endpoint ${conn.endpoint ?? '(default)'} (insecure: true); use only with self-signed test servers`;
    if (options.onWarning) options.onWarning(warning);
    else if (!warnedInsecure) {
      warnedInsecure = true;
      process.stderr.write(`${warning}\n`);
    }
    config.requestHandler = { httpsAgent: new https.Agent({ keepAlive: true, rejectUnauthorized: false }) };
  }
  return new S3Client(config);
}
