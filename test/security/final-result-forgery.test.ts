/**
 * Attack (issue 8, item 6): b submits a final result by building a `ResultService({isAggregator: true})`
 * with its own storage credentials: on the old main "only the aggregator may" was checked by the
 * caller's own SDK only, and `flame results list` showed b's result as the aggregator's. Now every
 * final result is signed by the aggregator's key from the roster; `list` shows whether each verifies,
 * `get` refuses one that does not unless asked, and so does a result whose bytes were replaced.
 */
import { jest } from '@jest/globals';
import { UnauthorizedError } from '../../src/errors.js';
import { S3ObjectStore } from '../../src/results/s3.js';
import { ResultService } from '../../src/results/service.js';
import { runCli } from '../cli/run-cli.js';
import { useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage();

test("b's forged final result and a replaced one are shown unverified and refused; the aggregator's verifies", async () => {
  const [c] = await Promise.all([stage.connect('c'), stage.connect('a')]);
  const real = await c.sendResult({ mean: 4.25 }, { name: 'result' });

  // b, with the hub's storage credentials, claims to be the aggregator.
  const hub = new S3ObjectStore({ endpoint: stage.s3.endpoint, region: stage.s3.region, bucket: stage.bucket, accessKeyId: stage.s3.accessKeyId, secretAccessKey: stage.s3.secretAccessKey, forcePathStyle: true });
  const bKeys = (await stage.identity('b')).keys[0];
  const trust = { aggregatorId: 'c', signKeysOf: (n: string) => stage.federation.roster.nodes.find((x) => x.node_id === n)?.keys.map((k) => k.sign) };
  const forger = new ResultService({ hub, local: hub, nodeId: 'c', analysisId: stage.analysisId, projectId: 'local-project', isAggregator: true, aggregatorId: 'c', signingKey: bKeys.signPrivate, trust });
  const fake = await forger.sendResult({ mean: 999 }, { name: 'result' });

  const listed = await c.results.listResults();
  expect(listed.find((r) => r.result_id === real)).toMatchObject({ verified: true, signed_by: 'c' });
  expect(listed.find((r) => r.result_id === fake)).toMatchObject({ verified: false, verification: expect.stringMatching(/not the aggregator "c"'s/) });
  await expect(c.results.getResult(fake)).rejects.toThrow(UnauthorizedError);
  expect(await c.results.getResult(fake, { unverified: true })).toEqual({ mean: 999 });
  expect(await c.results.getResult(real)).toEqual({ mean: 4.25 });

  // b overwrites the real result's bytes (same length, other content): the digest gives it away.
  const key = `projects/local-project/analyses/${stage.analysisId}/final/${real}`;
  const bytes = Buffer.from(await hub.getBytes(key));
  const swapped = Buffer.from(bytes.toString('latin1').replace('4.25', '9.99'), 'latin1');
  await hub.put(key, swapped, { metadata: (await hub.head(key))!.metadata });
  await expect(c.results.getResult(real)).rejects.toThrow(/differ from the signed ones/);
  expect((await c.results.verifyResult(real)).verified).toBe(false);

  // The CLI, as an observer with the roster: list marks it, get refuses (exit 4), --unverified warns.
  const env = {
    FLAME_NODE_ID: 'a',
    FLAME_ANALYSIS_ID: stage.analysisId,
    FLAME_PARTICIPANTS: 'a,b,c',
    FLAME_AGGREGATOR_ID: 'c',
    FLAME_NATS_URL: stage.nats.url,
    FLAME_NATS_USER: 'a',
    FLAME_NATS_PASSWORD: stage.passwords.a,
    FLAME_HUB_S3_ENDPOINT: stage.s3.endpoint,
    FLAME_HUB_S3_BUCKET: stage.bucket,
    FLAME_HUB_S3_ACCESS_KEY_ID: stage.s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: stage.s3.secretAccessKey,
    FLAME_LOCAL_DIR: `${stage.dir}/cli-local`,
    ...stage.federation.env,
  };
  const list = await runCli(['--json', 'results', 'list'], env);
  expect(list.code).toBe(0);
  const rows = JSON.parse(list.stdout) as Array<{ result_id: string; verified: boolean }>;
  expect(rows.find((r) => r.result_id === fake)?.verified).toBe(false);
  const get = await runCli(['results', 'get', fake], env);
  expect(get.code).toBe(4);
  expect(get.stderr).toMatch(/not verified: the signature is not the aggregator "c"'s/);
  const anyway = await runCli(['results', 'get', fake, '--unverified'], env);
  expect(anyway.code).toBe(0);
  expect(JSON.parse(anyway.stdout)).toEqual({ mean: 999 });
  expect(anyway.stderr).toMatch(/warning: final result .* is not verified/);
});
