/** DataApi: sources by id, typed helpers, no secrets, one cached client per source, end to end. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DataApi, createDataClient, describeDataSource, type DataSourceConfig } from '../../src/data/index.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { startFhirServer, type FhirTestServer } from '../helpers/fhir-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

describe('DataApi', () => {
  let fhir: FhirTestServer;
  let s3: S3TestServer;
  let folder: string;
  let api: DataApi;
  let sources: DataSourceConfig[];

  beforeAll(async () => {
    fhir = await startFhirServer({ token: 'fhir-token-XYZ' });
    await fhir.seed([{ resourceType: 'Patient', id: 'pa' }, { resourceType: 'Patient', id: 'pb' }]);
    s3 = await startS3Server(['api-data']);
    const writer = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await writer.send(new PutObjectCommand({ Bucket: 'api-data', Key: 'site-a/x.csv', Body: 'a,b\n' }));
    writer.destroy();
    folder = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-api-'));
    await fs.writeFile(path.join(folder, 'img.png'), Buffer.from([1, 2]));
    sources = [
      { id: 'ehr', type: 'fhir', baseUrl: fhir.baseUrl, token: 'fhir-token-XYZ' },
      {
        id: 'bucket',
        type: 's3',
        bucket: 'api-data',
        prefix: 'site-a',
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: 'SECRET-KEY-123',
      },
      { id: 'images', type: 'folder', path: folder },
    ];
    // The s3rver secret is fixed; keep a distinct marker above for the no-secrets check, and use
    // the real one for the client that reads.
    api = new DataApi(sources.map((s) => (s.type === 's3' ? { ...s, secretAccessKey: s3.secretAccessKey } : s)));
  });

  afterAll(async () => {
    await api?.close();
    await fhir?.close();
    await s3?.close();
    if (folder) await fs.rm(folder, { recursive: true, force: true });
  });

  test('getDataSources lists id, type and location without secrets', () => {
    const infos = new DataApi(sources).getDataSources();
    expect(infos).toEqual([
      { id: 'ehr', type: 'fhir', location: fhir.baseUrl },
      { id: 'bucket', type: 's3', location: 's3://api-data/site-a' },
      { id: 'images', type: 'folder', location: folder },
    ]);
    const text = JSON.stringify(infos);
    for (const secret of ['fhir-token-XYZ', 'SECRET-KEY-123', s3.accessKeyId]) expect(text).not.toContain(secret);
  });

  test('credentials in a FHIR URL are not described either', () => {
    const info = describeDataSource({ id: 'x', type: 'fhir', baseUrl: 'https://user:pw@fhir.example.org/r4/?_token=abc' });
    expect(info.location).toBe('https://fhir.example.org/r4');
  });

  test('each source reads through its typed client', async () => {
    const ehr = api.getFhirClient('ehr');
    expect((await ehr.read('Patient', 'pb')).id).toBe('pb');
    const bucket = api.getFileClient('bucket');
    expect((await bucket.list()).map((e) => e.key)).toEqual(['x.csv']);
    expect(Buffer.from(await bucket.getBytes('x.csv')).toString()).toBe('a,b\n');
    const images = api.getFileClient('images');
    expect(await images.getBytes('img.png')).toEqual(new Uint8Array([1, 2]));
  });

  test('clients are created once per id', () => {
    expect(api.getDataClient('bucket')).toBe(api.getDataClient('bucket'));
    expect(api.getDataClient('ehr')).not.toBe(api.getDataClient('images'));
  });

  test('an unknown id is a NotFoundError listing the known ids', () => {
    const err = (() => {
      try {
        api.getDataClient('nope');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(/"nope".*"ehr", "bucket", "images"/);
    expect(() => new DataApi([]).getDataClient('x')).toThrow(/none configured/);
  });

  test('the typed helpers refuse a source of the other type', () => {
    expect(() => api.getFhirClient('images')).toThrow(BadRequestError);
    expect(() => api.getFhirClient('bucket')).toThrow(/"bucket" is of type "s3"/);
    expect(() => api.getFileClient('ehr')).toThrow(/"ehr" is of type "fhir"/);
  });

  test('duplicate ids and unknown types are refused, naming them', () => {
    const f: DataSourceConfig = { id: 'dup', type: 'folder', path: folder };
    expect(() => new DataApi([f, f])).toThrow(/"dup"/);
    const weird = { id: 'w', type: 'ftp' } as unknown as DataSourceConfig;
    expect(() => new DataApi([weird])).toThrow(/"ftp"/);
    expect(() => createDataClient(weird)).toThrow(BadRequestError);
  });
});
