/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * An uploaded image folder is data: two hospitals of the shipped Fashion-MNIST sample are uploaded
 * with `DatasetStore` to a plain s3rver this test starts, and the federated image diagnosis reads
 * them back through the data API (an S3 data source on each dataset's `images` prefix, as a node
 * configured with FLAME_DATA_SOURCES would). Its response must equal the one from the local
 * folders read through the data API (folder data sources): same images, uuids and verdicts.
 */
import path from 'node:path';
import { resolveConfig } from '../../src/config.js';
import type { DataSourceConfig } from '../../src/data/index.js';
import { planDataset } from '../../src/datasets/sources.js';
import { DatasetStore } from '../../src/datasets/store.js';
import { diagnose, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

const SAMPLE = path.resolve('data/sample');
const NODES = ['node-a', 'node-b'];

let s3: S3TestServer;
let store: DatasetStore;

beforeAll(async () => {
  s3 = await startS3Server(['flame-hub']);
  store = DatasetStore.fromConfig(
    resolveConfig({}, {
      FLAME_HUB_S3_ENDPOINT: s3.endpoint,
      FLAME_HUB_S3_BUCKET: 'flame-hub',
      FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
      FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      FLAME_HUB_S3_PREFIX: 'hub',
    }),
  );
});

afterAll(async () => {
  store.client.destroy();
  await s3.close();
});

function run(sources: Record<string, DataSourceConfig>): Promise<DiagnosisResult> {
  return diagnose(
    { dataset_uuid: 'uploaded-sample', tasks: [{ name: 'mislabeled_images' }, { name: 'lighting_conditions' }, { name: 'duplicates' }] },
    { nodes: NODES.map((id) => ({ id, dataSources: [sources[id]], data: { source: 'images' } })), disclosure: { minCount: 1 } },
  );
}

test('the diagnosis of the uploaded copies equals the diagnosis of the local folders', async () => {
  const uploaded: Record<string, DataSourceConfig> = {};
  const local: Record<string, DataSourceConfig> = {};
  for (const id of NODES) {
    const result = await store.upload(await planDataset(path.join(SAMPLE, id)), { name: `sample-${id}` });
    expect(result.manifest).toMatchObject({ kind: 'image_folder', status: 'complete', details: { images: 100 } });
    uploaded[id] = store.imagesSource(result.manifest);
    local[id] = { id: 'images', type: 'folder', path: path.join(SAMPLE, id) };
  }
  expect(uploaded['node-a']).toMatchObject({ id: 'images', type: 's3', endpoint: s3.endpoint, bucket: 'flame-hub', prefix: expect.stringMatching(/^hub\/datasets\/[0-9a-f-]{36}\/images$/) });

  const fromS3 = await run(uploaded);
  const fromFolders = await run(local);

  // not an empty agreement: every image was read, and the planted faults were found
  const mislabeled = fromS3.tasks.find((t) => t.name === 'mislabeled_images')!;
  const lighting = fromS3.tasks.find((t) => t.name === 'lighting_conditions')!;
  const count = (d: { class_files: Record<string, Record<string, unknown>> }) => Object.values(d.class_files).reduce((a, files) => a + Object.keys(files).length, 0);
  expect(count(mislabeled.datasets.outliers) + count(mislabeled.datasets.inliers)).toBe(200);
  expect(count(mislabeled.datasets.outliers)).toBeGreaterThan(0);
  expect(count(lighting.datasets.outliers)).toBeGreaterThan(0);

  expect(fromS3).toEqual(fromFolders);
}, 300_000);
