/**
 * Data sources through a FLAME node's Kong, on the node-services double: the project's sources from
 * the hub adapter, an S3 bucket against the FileDataClient conformance suite (listing paged), FHIR
 * searches whose next links name the server's own base, and where each token goes.
 */
import { FlameNodeDataApi } from '../../src/flame-node/kong-data.js';
import { TokenHolder } from '../../src/flame-node/token.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { startFlameNodeDouble, type FlameNodeDouble } from '../helpers/flame-node-double.js';
import { describeFileDataClientConformance } from './conformance.js';

const patients = Array.from({ length: 23 }, (_, i) => ({ resourceType: 'Patient', id: `p${i}`, gender: i % 2 ? 'female' : 'male' }));

function api(double: FlameNodeDouble, nodeId: string, dataSourceToken = 'ds-token'): FlameNodeDataApi {
  return new FlameNodeDataApi({ nginxUrl: double.nginxUrl(nodeId), projectId: 'proj-1', token: new TokenHolder(double.token(nodeId)), dataSourceToken, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
}

describeFileDataClientConformance('S3 through Kong', async (files) => {
  const double = await startFlameNodeDouble({
    analysisId: 'an-data',
    projectId: 'proj-1',
    nodes: [{ nodeId: 'n1', nodeType: 'default' }],
    data: { n1: [{ name: 'imaging', type: 's3', objects: files, pageSize: 2 }] },
  });
  return { client: api(double, 'n1').files('imaging'), cleanup: () => double.close() };
});

describe('FLAME node data API through Kong', () => {
  let double: FlameNodeDouble;
  beforeEach(async () => {
    double = await startFlameNodeDouble({
      analysisId: 'an-data',
      projectId: 'proj-1',
      nodes: [{ nodeId: 'n1', nodeType: 'default' }, { nodeId: 'n2', nodeType: 'default' }],
      data: { n1: [{ name: 'proj-1-fhir', type: 'fhir', resources: patients, pageSize: 5 }, { name: 'proj-1-s3', type: 's3', objects: { 'a.csv': Buffer.from('x,y\n1,2\n') } }] },
    });
  });
  afterEach(() => double.close());

  it("lists the project's sources from the hub adapter with the Keycloak token", async () => {
    expect(await api(double, 'n1').sources()).toEqual([
      { id: 'kong-proj-1-fhir', name: 'proj-1-fhir', paths: ['/proj-1-fhir/fhir'], type: 'fhir' },
      { id: 'kong-proj-1-s3', name: 'proj-1-s3', paths: ['/proj-1-s3/s3'], type: 's3' },
    ]);
    const [req] = double.requestsTo('n1', /^\/hub-adapter\//);
    expect(req.path).toBe('/hub-adapter/kong/datastore/proj-1');
    expect(req.headers.authorization).toBe(`Bearer ${double.token('n1')}`);
    expect(req.headers.apikey).toBeUndefined();
    expect(await api(double, 'n2').sources()).toEqual([]);
  });

  it('pages a FHIR search through Kong, rebasing next links the server wrote with its own base', async () => {
    const fhir = api(double, 'n1').fhir('proj-1-fhir');
    const seen: string[] = [];
    for await (const p of fhir.searchAll('Patient', { _count: 5 })) seen.push(p.id!);
    expect(seen).toEqual(patients.map((p) => p.id));
    const reqs = double.requestsTo('n1', /^\/kong\/proj-1-fhir\/fhir\/Patient$/);
    expect(reqs).toHaveLength(5);
    expect(reqs.every((r) => r.headers.apikey === 'ds-token' && r.headers.authorization === undefined)).toBe(true);
    const first = await fhir.search('Patient', { _count: 2 });
    expect((first.entry as unknown[]).length).toBe(2);
    expect((await fhir.read('Patient', 'p7')).gender).toBe('female');
    await expect(fhir.read('Patient', 'nobody')).rejects.toBeInstanceOf(NotFoundError);
    await expect(fhir.read('Patient', '../x')).rejects.toBeInstanceOf(BadRequestError);
  });

  it('reads S3 objects through Kong, and a wrong apikey is refused', async () => {
    const files = api(double, 'n1').files('proj-1-s3');
    expect((await files.list()).map((e) => e.key)).toEqual(['a.csv']);
    expect(Buffer.from(await files.getBytes('a.csv')).toString()).toBe('x,y\n1,2\n');
    await expect(api(double, 'n1', 'wrong').files('proj-1-s3').list()).rejects.toThrow(/401/);
    expect(() => api(double, 'n1').files('../etc')).toThrow(BadRequestError);
  });

  it('never sends the apikey outside Kong: an attachment URL elsewhere is rebased onto Kong', async () => {
    const fhir = api(double, 'n1').fhir('proj-1-fhir');
    // An attachment on the FHIR server's own base is read through Kong; inline data is decoded.
    await expect(fhir.attachmentBytes({ url: 'http://evil.invalid/fhir/Binary/none' })).rejects.toBeInstanceOf(NotFoundError);
    expect(double.requestsTo('n1', /^\/kong\/proj-1-fhir\/fhir\/Binary\/none$/)).toHaveLength(1);
    expect(Buffer.from(await fhir.attachmentBytes({ data: Buffer.from('img').toString('base64') })).toString()).toBe('img');
  });
});
