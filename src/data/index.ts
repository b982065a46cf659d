/**
 * The data API: the project's data sources by id, described without secrets, and one client per
 * source (created on first use, then reused).
 */
import path from 'node:path';
import { BadRequestError, NotFoundError } from '../errors.js';
import { FhirClient } from './fhir.js';
import { FolderDataClient } from './folder.js';
import type { DataClient, DataSourceConfig, DataSourceInfo, FhirDataClient, FileDataClient } from './port.js';
import { S3DataClient } from './s3.js';

export { FhirClient, type FhirClientOptions } from './fhir.js';
export { FolderDataClient } from './folder.js';
export { S3DataClient, type S3DataClientOptions } from './s3.js';
export type * from './port.js';

/** Options shared by every client the data API creates. */
export interface DataClientOptions {
  /** Where insecure-TLS warnings go; default `console.warn`. */
  onWarning?: (message: string) => void;
}

/** The client that reads `config`'s source. */
export function createDataClient(config: DataSourceConfig, options: DataClientOptions = {}): DataClient {
  switch (config.type) {
    case 'fhir':
      return new FhirClient({ baseUrl: config.baseUrl, token: config.token, insecure: config.insecure, onWarning: options.onWarning });
    case 's3':
      return new S3DataClient({ ...config, onWarning: options.onWarning });
    case 'folder':
      return new FolderDataClient(config.path);
    default:
      throw new BadRequestError(
        `data source ${JSON.stringify((config as { id?: unknown }).id)}: unknown type ${JSON.stringify((config as { type?: unknown }).type)}`,
      );
  }
}

/** `config` as analyses may see it: id, type and location, never tokens or keys. */
export function describeDataSource(config: DataSourceConfig): DataSourceInfo {
  switch (config.type) {
    case 'fhir': {
      // Credentials may hide in the URL's user info or query; keep origin and path only.
      let location: string;
      try {
        const u = new URL(config.baseUrl);
        location = `${u.origin}${u.pathname}`.replace(/\/+$/, '');
      } catch {
        location = '(invalid URL)';
      }
      return { id: config.id, type: 'fhir', location };
    }
    case 's3': {
      const prefix = (config.prefix ?? '').replace(/^\/+/, '');
      return { id: config.id, type: 's3', location: `s3://${config.bucket}/${prefix}` };
    }
    case 'folder':
      return { id: config.id, type: 'folder', location: path.resolve(config.path) };
    default:
      throw new BadRequestError(
        `data source ${JSON.stringify((config as { id?: unknown }).id)}: unknown type ${JSON.stringify((config as { type?: unknown }).type)}`,
      );
  }
}

/** The project's data sources, by id. */
export class DataApi {
  private readonly sources = new Map<string, DataSourceConfig>();
  private readonly clients = new Map<string, DataClient>();

  private readonly external = new Map<string, { info: DataSourceInfo; client: DataClient }>();

  /**
   * @param sources the configured sources
   * @param options how clients are made
   * @param external sources whose clients are made elsewhere (a FLAME node's Kong sources), by id
   */
  constructor(sources: DataSourceConfig[], private readonly options: DataClientOptions = {}, external: Array<{ info: DataSourceInfo; client: DataClient }> = []) {
    for (const e of external) this.external.set(e.info.id, e);
    for (const s of sources) {
      if (this.sources.has(s.id)) throw new BadRequestError(`data source id "${s.id}" is configured twice`);
      describeDataSource(s); // rejects unknown types now rather than on first use
      this.sources.set(s.id, s);
    }
  }

  /** Every source: id, type and location, without secrets. */
  getDataSources(): DataSourceInfo[] {
    return [...[...this.sources.values()].map(describeDataSource), ...[...this.external.values()].filter((e) => !this.sources.has(e.info.id)).map((e) => ({ ...e.info }))];
  }

  /** The client of source `id`; NotFoundError listing the known ids when there is none. */
  getDataClient(id: string): DataClient {
    const cached = this.clients.get(id);
    if (cached) return cached;
    const config = this.sources.get(id);
    const external = this.external.get(id);
    if (!config && external) return external.client;
    if (!config) {
      const known = [...this.sources.keys(), ...this.external.keys()];
      throw new NotFoundError(
        `no data source "${id}"; known: ${known.length ? known.map((k) => `"${k}"`).join(', ') : '(none configured)'}`,
      );
    }
    const client = createDataClient(config, this.options);
    this.clients.set(id, client);
    return client;
  }

  /** The FHIR client of source `id`; BadRequestError if that source is not FHIR. */
  getFhirClient(id: string): FhirDataClient {
    const client = this.getDataClient(id);
    if (client.type !== 'fhir') {
      throw new BadRequestError(`data source "${id}" is of type "${client.type}", not "fhir"; use getFileClient`);
    }
    return client;
  }

  /** The file client (S3 or folder) of source `id`; BadRequestError if that source is FHIR. */
  getFileClient(id: string): FileDataClient {
    const client = this.getDataClient(id);
    if (client.type === 'fhir') {
      throw new BadRequestError(`data source "${id}" is of type "fhir", not a file source; use getFhirClient`);
    }
    return client;
  }

  /** Release the clients' connections (S3 sockets, insecure-TLS pools); later calls make new clients. */
  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    for (const c of clients) {
      if (c instanceof S3DataClient || c instanceof FhirClient) await c.close();
    }
  }
}
