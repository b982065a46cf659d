/**
 * The data API's port: the sources a project may read, described in config, and the clients that
 * read them. Analyses get a client by source id and never see credentials.
 */
import type { Readable } from 'node:stream';

/** How to reach one S3 bucket (AWS or an S3-compatible server). */
export interface S3Connection {
  /** Endpoint URL of an S3-compatible server; AWS's when absent. */
  endpoint?: string;
  /** Region name (e.g. `us-east-1`). */
  region: string;
  /** The bucket. */
  bucket: string;
  /** Access key; give both keys or neither (then the default AWS credential chain is used). */
  accessKeyId?: string;
  /** Secret key; give both keys or neither. */
  secretAccessKey?: string;
  /** Path-style addressing (MinIO, SeaweedFS, s3rver). Default true when an endpoint is given. */
  forcePathStyle?: boolean;
  /** Accept self-signed TLS certificates (warns when on). */
  insecure?: boolean;
}

/** One data source of the project, with its credentials: a FHIR server, an S3 prefix or a local folder. */
export type DataSourceConfig =
  | {
      /** Source id analyses ask for (letters, digits, `_`, `-`, `.`; unique). */
      id: string;
      /** A FHIR server. */
      type: 'fhir';
      /** The server's base URL (http or https). */
      baseUrl: string;
      /** Bearer token sent with every request. */
      token?: string;
      /** Accept self-signed TLS certificates (warns when on). */
      insecure?: boolean;
    }
  | ({
      /** Source id analyses ask for (letters, digits, `_`, `-`, `.`; unique). */
      id: string;
      /** Objects below a bucket + prefix. */
      type: 's3';
      /** Only objects below this prefix are visible; keys are relative to it. */
      prefix?: string;
    } & S3Connection)
  | {
      /** Source id analyses ask for (letters, digits, `_`, `-`, `.`; unique). */
      id: string;
      /** Files below a local folder. */
      type: 'folder';
      /** The folder. */
      path: string;
    };

/** What `getDataSources()` returns: the config without secrets. */
export interface DataSourceInfo {
  /** The source's id. */
  id: string;
  /** The kind of source. */
  type: DataSourceConfig['type'];
  /** base URL, s3://bucket/prefix or folder path */
  location: string;
}

/** An entry of an S3 prefix or a local folder. `key` is relative to the source's root. */
export interface DataEntry {
  /** Path of the file relative to the source's root, `/`-separated. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** ISO-8601 time of the last modification. */
  lastModified: string;
}

/** Reading files: S3 sources and local folders share this shape. */
export interface FileDataClient {
  /** The kind of source. */
  readonly type: 's3' | 'folder';
  /** Every file below `prefix` (recursively), sorted by key. */
  list(prefix?: string): Promise<DataEntry[]>;
  /** The whole file `key`. NotFoundError naming the key when it does not exist. */
  getBytes(key: string): Promise<Uint8Array>;
  /** File `key` as a stream. NotFoundError naming the key when it does not exist. */
  getStream(key: string): Promise<Readable>;
}

/** A FHIR resource as plain JSON. */
export type FhirResource = {
  /** The FHIR resource type (`Patient`, `Bundle`, …). */
  resourceType: string;
  /** The server-assigned id. */
  id?: string;
} & Record<string, unknown>;

/** Reading a FHIR server: searches, reads and attachments (the token never leaves the server's origin). */
export interface FhirDataClient {
  /** The kind of source. */
  readonly type: 'fhir';
  /** One page of a search, as the server returns it (a Bundle). */
  search(resourceType: string, params?: Record<string, string | number>): Promise<FhirResource>;
  /** Every matching resource, following the Bundle's `next` links page by page. */
  searchAll(resourceType: string, params?: Record<string, string | number>): AsyncIterable<FhirResource>;
  /** One resource by type and id; NotFoundError naming both when the server answers 404 or 410. */
  read(resourceType: string, id: string): Promise<FhirResource>;
  /** The raw bytes of an attachment (`data` inline, or fetched from `url`). */
  attachmentBytes(attachment: { data?: string; url?: string }): Promise<Uint8Array>;
}

/** The client of one data source; tell the kinds apart by `type`. */
export type DataClient = FileDataClient | FhirDataClient;
