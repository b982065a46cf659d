/**
 * The data API's port: the sources a project may read, described in config, and the clients that
 * read them. Analyses get a client by source id and never see credentials.
 */
import type { Readable } from 'node:stream';

export interface S3Connection {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing (MinIO, SeaweedFS, s3rver). Default true when an endpoint is given. */
  forcePathStyle?: boolean;
  /** Accept self-signed TLS certificates (warns when on). */
  insecure?: boolean;
}

export type DataSourceConfig =
  | { id: string; type: 'fhir'; baseUrl: string; token?: string; insecure?: boolean }
  | ({ id: string; type: 's3'; prefix?: string } & S3Connection)
  | { id: string; type: 'folder'; path: string };

/** What `getDataSources()` returns: the config without secrets. */
export interface DataSourceInfo {
  id: string;
  type: DataSourceConfig['type'];
  /** base URL, s3://bucket/prefix or folder path */
  location: string;
}

/** An entry of an S3 prefix or a local folder. `key` is relative to the source's root. */
export interface DataEntry {
  key: string;
  size: number;
  lastModified: string;
}

/** Reading files: S3 sources and local folders share this shape. */
export interface FileDataClient {
  readonly type: 's3' | 'folder';
  /** Every file below `prefix` (recursively), sorted by key. */
  list(prefix?: string): Promise<DataEntry[]>;
  getBytes(key: string): Promise<Uint8Array>;
  getStream(key: string): Promise<Readable>;
}

/** A FHIR resource as plain JSON. */
export type FhirResource = { resourceType: string; id?: string } & Record<string, unknown>;

export interface FhirDataClient {
  readonly type: 'fhir';
  /** One page of a search, as the server returns it (a Bundle). */
  search(resourceType: string, params?: Record<string, string | number>): Promise<FhirResource>;
  /** Every matching resource, following the Bundle's `next` links page by page. */
  searchAll(resourceType: string, params?: Record<string, string | number>): AsyncIterable<FhirResource>;
  read(resourceType: string, id: string): Promise<FhirResource>;
  /** The raw bytes of an attachment (`data` inline, or fetched from `url`). */
  attachmentBytes(attachment: { data?: string; url?: string }): Promise<Uint8Array>;
}

export type DataClient = FileDataClient | FhirDataClient;
