/**
 * The trust anchor for keys (issue 8): keys come from a roster a node cannot overwrite. A node's own
 * participant record cannot change which key another node trusts; an operator's new roster on the
 * broker rotates a key while the analysis runs; a node that restarts keeps its key; first-use trust
 * is an explicit, warned mode that refuses a changed key.
 */
import path from 'node:path';
import { jest } from '@jest/globals';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { BadRequestError } from '../../src/errors.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { FlameSDK } from '../../src/sdk.js';
import { loadOrCreateIdentity, publicKeySet, rotateIdentity } from '../../src/trust/identity.js';
import { buildRoster, signRoster } from '../../src/trust/roster.js';
import { generateSigningKey, importSigningKey } from '../../src/trust/statements.js';
import { eventually, useStage, type NodeName } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage('each');

const at = (n: NodeName) => ({
  local: new FsObjectStore(path.join(stage.dir, 'nodes', n)),
  projectId: 'local-project',
  analysisId: stage.analysisId,
  nodeId: n,
});

test("b's announced record with a's name or a new key for itself changes no one's trust", async () => {
  const [c, a] = await Promise.all([stage.connect('c'), stage.connect('a')]);
  const b = await stage.connect('b');
  // b announces a fresh key of its own (as if rotated without the operator) on its participant record.
  const js = (await stage.raw('b')).jetstream();
  const fake = publicKeySet((await loadOrCreateIdentity({ ...at('b'), analysisId: 'elsewhere' })).keys[0]);
  await js.publish(
    `$KV.${stage.names.bucket}.${stage.names.participantKey('b')}`,
    new TextEncoder().encode(
      JSON.stringify({
        nodeId: 'b',
        role: 'aggregator',
        keys: fake,
        lastSeen: new Date().toISOString(),
      }),
    ),
  );
  await expect(js.publish(`$KV.${stage.names.bucket}.${stage.names.participantKey('a')}`, new TextEncoder().encode('{}'), { timeout: 2000 })).rejects.toThrow();
  // c still sends to b under the roster's key (b opens it), and still takes a's messages.
  const id = await c.sendIntermediateResult('b', { for: 'b' });
  expect((await b.awaitMessage('c', { timeoutMs: 5000 })).result_id).toBe(id);
  await a.sendMessage('c', 'hi');
  expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toBe('hi');
  // The role comes from the config and the roster, not from the record.
  expect((await c.getParticipants()).find((p) => p.nodeId === 'b')?.role).toBe('analyzer');
});

test('a key rotated by a new roster the operator publishes is taken up while the analysis runs', async () => {
  const operator = generateSigningKey();
  const opKey = importSigningKey(operator.privateKey, 'operator key');
  const roster = async (version: number) =>
    JSON.stringify(
      signRoster(
        buildRoster(
          stage.analysisId,
          await Promise.all(
            (['a', 'b', 'c'] as const).map(async (n) => ({
              node_id: n,
              role: n === 'c' ? ('aggregator' as const) : ('analyzer' as const),
              keys: (await loadOrCreateIdentity(at(n))).keys.map(publicKeySet),
            })),
          ),
          version,
        ),
        opKey,
      ),
    );
  const admin = {
    servers: [stage.nats.url],
    analysisId: stage.analysisId,
    user: 'admin',
    pass: stage.passwords.admin,
  };
  await NatsBrokerAdapter.provision(admin);
  await NatsBrokerAdapter.publishRoster(admin, await roster(1));
  const trust = {
    mode: 'roster' as const,
    operatorKey: operator.publicKey,
    roster: undefined,
  };
  const c = await stage.connect('c', { trust });
  let a = await stage.connect('a', { trust });
  await a.sendMessage('c', 1);
  expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toBe(1);

  // a rotates; until the operator signs the new key, a keeps sending with the old one.
  await a.close();
  const rotated = await rotateIdentity(at('a'));
  a = await stage.connect('a', { trust });
  expect(a.publicKeys.kid).toBe(rotated.keys[1].kid);
  await a.sendMessage('c', 2);
  expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toBe(2);

  // The operator publishes version 2 with both of a's keys; a restarted a sends with the new key,
  // and c, still holding version 1, looks for the newer roster when the new key shows up.
  await NatsBrokerAdapter.publishRoster(admin, await roster(2));
  await a.close();
  a = await stage.connect('a', { trust });
  expect(a.publicKeys.kid).toBe(rotated.keys[0].kid);
  await a.sendMessage('c', 3);
  expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toBe(3);
  // Sealed for a under its new key, and what was sealed for the old key still opens after the restart.
  const r = await c.sendIntermediateResult('a', { sealed: 'for a' });
  expect((await a.awaitMessage('c', { timeoutMs: 5000 })).result_id).toBe(r);

  // An older roster (version 1 again) does not replace the newer one; a roster not signed by the operator is refused.
  await NatsBrokerAdapter.publishRoster(admin, await roster(1));
  await expect(
    stage.connect('b', {
      trust: { mode: 'roster', operatorKey: generateSigningKey().publicKey },
    }),
  ).rejects.toThrow(/does not verify with the configured operator key/);
});

test('without a roster a multi-node analysis refuses to start, naming what to set', async () => {
  const err = await FlameSDK.connect(stage.config('c', { trust: { mode: 'roster', roster: undefined } })).catch((e: Error) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  expect((err as Error).message).toMatch(/no roster: set FLAME_ROSTER .* or FLAME_TRUST=tofu/);
  // A roster that misses a participant, or names another aggregator, is refused as well.
  const partial = {
    ...stage.federation.roster,
    nodes: stage.federation.roster.nodes.filter((n) => n.node_id !== 'b'),
  };
  await expect(FlameSDK.connect(stage.config('c', { trust: { mode: 'roster', roster: partial } }))).rejects.toThrow(/participant\(s\) "b" are not in the roster/);
});

test('first-use trust is explicit and warned, pins the first key, and refuses a changed one', async () => {
  const logs: string[] = [];
  const tofu = { trust: { mode: 'tofu' as const } };
  const opened: FlameSDK[] = [];
  const open = async (n: NodeName, extra = {}, deps = {}) => {
    const sdk = await FlameSDK.connect(stage.config(n, { ...tofu, ...extra }), deps);
    opened.push(sdk);
    return sdk;
  };
  try {
    const c = await open('c', { logLevel: 'warn' }, { logSink: (l: string) => logs.push(l) });
    expect(logs.some((l) => /trust on first use/.test(l))).toBe(true);
    const a = await open('a');
    const firstKid = a.publicKeys.kid;
    await a.sendMessage('c', 'first');
    expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toBe('first');
    await a.close();
    // a comes back with a different key (another identity, as an impostor would): c keeps the pinned
    // one and refuses these messages.
    const a2 = await open('a', {
      local: { type: 'fs', dir: path.join(stage.dir, 'impostor-a') },
    });
    expect(a2.publicKeys.kid).not.toBe(firstKid);
    await a2.sendMessage('c', 'second');
    await eventually(() => Object.keys(c.messageStats().refused.a ?? {}).length > 0, 'c refused the changed key');
    expect(c.messageStats().refused.a).toEqual({ unknown_sender_key: 1 });
    await expect(c.awaitMessage('a', { timeoutMs: 500 })).rejects.toThrow(/no message/);
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
});
