/**
 * `flame keys`, `flame roster` and `flame analysis`: what a node and the analysis' operator do so that
 * every node can prove who it is and check who the others are.
 *
 *   on each node:   flame keys show                 → a one-line public key token for the operator
 *   operator:       flame keys operator --out op.key → the operator's signing key (public half printed)
 *                   flame roster sign --key op.key --aggregator agg TOKEN... > roster.json
 *                   flame analysis nats-config --nodes a,b,agg --aggregator agg   (nats-server users)
 *                   flame analysis provision        → the stream and bucket, as every node checks them
 *                   flame roster publish roster.json (optional: nodes with FLAME_OPERATOR_KEY read it there)
 *   on each node:   FLAME_ROSTER=roster.json FLAME_OPERATOR_KEY=<public key> flame run ...
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { NatsBrokerAdapter } from '../../../src/broker/nats/index.js';
import { natsAuthorizationConfig } from '../../../src/broker/nats/permissions.js';
import { configFromEnv, resolveConfig, type FlameConfig } from '../../../src/config.js';
import { BadRequestError, ConflictError } from '../../../src/errors.js';
import { FsObjectStore } from '../../../src/results/fs.js';
import type { ObjectStore } from '../../../src/results/port.js';
import { S3ObjectStore } from '../../../src/results/s3.js';
import { loadOrCreateIdentity, nodeKeyToken, parseNodeKeyToken, publicKeySet, rotateIdentity } from '../../../src/trust/identity.js';
import { resolveOperatorKey } from '../../../src/trust/peers.js';
import { buildRoster, parseRosterText, signRoster, type RosterNode } from '../../../src/trust/roster.js';
import { generateSigningKey, importSigningKey } from '../../../src/trust/statements.js';
import { printResult } from '../output.js';
import { intOption } from '../../../src/validation.js';

function localStore(config: FlameConfig): ObjectStore {
  return config.local.type === 'fs' ? new FsObjectStore(config.local.dir) : new S3ObjectStore(config.local);
}

function identityAt(config: FlameConfig): { local: ObjectStore; projectId: string; analysisId: string; nodeId: string } {
  return { local: localStore(config), projectId: config.projectId, analysisId: config.analysisId, nodeId: config.nodeId };
}

/** The operator's NATS connection and the analysis, from FLAME_NATS_* and FLAME_ANALYSIS_ID (no node config needed). */
function operatorNats(what: string): Extract<FlameConfig['broker'], { type: 'nats' }> & { analysisId: string } {
  const env = configFromEnv();
  if (env.broker?.type !== 'nats') throw new BadRequestError(`${what}: needs a NATS server (set FLAME_NATS_URL and the operator's login in FLAME_NATS_USER / FLAME_NATS_PASSWORD)`);
  if (!env.analysisId) throw new BadRequestError(`${what}: set FLAME_ANALYSIS_ID`);
  return { ...env.broker, analysisId: env.analysisId };
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new BadRequestError(`${what} ${file}: cannot read it (${(e as Error).message})`, { cause: e });
  }
}

/** Registers `flame keys`, `flame roster` and `flame analysis`. */
export function registerTrust(program: Command): void {
  const json = (): boolean => Boolean(program.opts().json);

  const keys = program.command('keys').description("this node's keys, and the operator's signing key");
  keys
    .command('show')
    .description("print this node's public keys as a token for the operator (creates the keys on first use)")
    .addHelpText('after', '\nExample:\n  FLAME_NODE_ID=hospital-a FLAME_ANALYSIS_ID=study-7 flame keys show\n')
    .action(async () => {
      const config = resolveConfig();
      const id = await loadOrCreateIdentity(identityAt(config));
      const k = publicKeySet(id.keys[0]);
      const token = nodeKeyToken(config.nodeId, k);
      if (json()) printResult({ node_id: config.nodeId, analysis_id: config.analysisId, kid: k.kid, box: k.box, sign: k.sign, token }, true);
      else process.stdout.write(`${token}\n`);
    });
  keys
    .command('rotate')
    .description('make a new key set (the old ones keep opening what was sealed for them) and print its token')
    .action(async () => {
      const config = resolveConfig();
      const id = await rotateIdentity(identityAt(config));
      const token = nodeKeyToken(config.nodeId, publicKeySet(id.keys[0]));
      process.stderr.write('flame: the node sends with its old key until the operator signs a roster with the new one (flame roster sign)\n');
      if (json()) printResult({ node_id: config.nodeId, kid: id.keys[0].kid, token }, true);
      else process.stdout.write(`${token}\n`);
    });
  keys
    .command('operator')
    .description("make the operator's Ed25519 signing key; the private key goes to --out, the public key is printed")
    .requiredOption('--out <file>', 'where to write the private key (created, never overwritten; mode 0600)')
    .action((opts: { out: string }) => {
      const k = generateSigningKey();
      try {
        fs.writeFileSync(opts.out, `${k.privateKey}\n`, { flag: 'wx', mode: 0o600 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictError(`--out ${opts.out}: exists; choose another file (an operator key is never overwritten)`);
        throw new BadRequestError(`--out ${opts.out}: ${(e as Error).message}`, { cause: e });
      }
      if (json()) printResult({ public_key: k.publicKey, private_key_file: opts.out }, true);
      else process.stdout.write(`${k.publicKey}\n`);
    });

  const roster = program.command('roster').description('the signed list of the analysis\' nodes and their keys');
  roster
    .command('sign')
    .description('sign a roster with the operator key from the nodes\' tokens (flame keys show)')
    .requiredOption('--key <file>', "the operator's private key (flame keys operator)")
    .requiredOption('--aggregator <node>', 'the node that merges and submits final results')
    .option('--analysis <id>', 'the analysis (default FLAME_ANALYSIS_ID)')
    .option('--version <n>', 'roster version: higher than the one it replaces (default 1)', intOption('--version'), 1)
    .option('--out <file>', 'write it here (default stdout)')
    .argument('<tokens...>', 'one token per node, as flame keys show prints it; several tokens of one node keep older keys valid')
    .addHelpText('after', '\nExample:\n  flame roster sign --key op.key --aggregator agg --analysis study-7 "$(cat a.token)" "$(cat agg.token)" --out roster.json\n')
    .action((tokens: string[], opts: { key: string; aggregator: string; analysis?: string; version: number; out?: string }) => {
      const analysisId = opts.analysis ?? configFromEnv().analysisId;
      if (!analysisId) throw new BadRequestError('flame roster sign: give --analysis ID (or set FLAME_ANALYSIS_ID)');
      const byNode = new Map<string, RosterNode>();
      for (const t of tokens) {
        const { nodeId, keys: k } = parseNodeKeyToken(t);
        const entry = byNode.get(nodeId) ?? { node_id: nodeId, role: nodeId === opts.aggregator ? 'aggregator' : 'analyzer', keys: [] };
        if (!entry.keys.some((x) => x.kid === k.kid)) entry.keys.push(k);
        byNode.set(nodeId, entry);
      }
      if (!byNode.has(opts.aggregator)) throw new BadRequestError(`--aggregator ${opts.aggregator}: no token of that node was given`);
      const signed = signRoster(buildRoster(analysisId, [...byNode.values()], opts.version), importSigningKey(readText(opts.key, '--key'), `--key ${opts.key}`));
      const text = `${JSON.stringify(signed, null, 2)}\n`;
      if (opts.out) fs.writeFileSync(opts.out, text);
      else process.stdout.write(text);
    });
  roster
    .command('show')
    .description('check a roster (with the operator key, when given) and list its nodes')
    .argument('<file>', 'the roster file')
    .option('--operator-key <key>', "the operator's public key, or a file holding it (default FLAME_OPERATOR_KEY)")
    .action((file: string, opts: { operatorKey?: string }) => {
      const r = parseRosterText(readText(file, 'roster'), `roster ${file}`, resolveOperatorKey(opts.operatorKey ?? process.env.FLAME_OPERATOR_KEY));
      printResult(
        r.nodes.map((n) => ({ node: n.node_id, role: n.role, keys: n.keys.map((k) => k.kid).join(' '), analysis: r.analysis_id, version: r.version })),
        json(),
      );
    });
  roster
    .command('publish')
    .description("publish a signed roster on the broker (operator's NATS login), where nodes with FLAME_OPERATOR_KEY read it")
    .argument('<file>', 'the signed roster')
    .action(async (file: string) => {
      const nats = operatorNats('flame roster publish');
      const text = readText(file, 'roster');
      const operatorKey = resolveOperatorKey(process.env.FLAME_OPERATOR_KEY);
      if (!operatorKey) throw new BadRequestError('flame roster publish: set FLAME_OPERATOR_KEY to the operator public key, so the roster is checked before nodes read it');
      const r = parseRosterText(text, `roster ${file}`, operatorKey);
      if (r.analysis_id !== nats.analysisId) throw new BadRequestError(`roster ${file}: it is for analysis "${r.analysis_id}", FLAME_ANALYSIS_ID is "${nats.analysisId}"`);
      await NatsBrokerAdapter.publishRoster(nats, text);
      if (!json()) process.stdout.write(`published roster version ${r.version} of analysis ${r.analysis_id}\n`);
    });

  const analysis = program.command('analysis').description("the analysis' broker resources (for the operator)");
  analysis
    .command('provision')
    .description("create the analysis' stream and participants bucket as every node checks them (operator's NATS login)")
    .action(async () => {
      const nats = operatorNats('flame analysis provision');
      await NatsBrokerAdapter.provision(nats);
      if (!json()) process.stdout.write(`provisioned analysis ${nats.analysisId}\n`);
    });
  analysis
    .command('nats-config')
    .description('print a nats-server authorization block with one login per node (random passwords) and an admin')
    .requiredOption('--nodes <ids>', 'comma-separated node ids')
    .requiredOption('--aggregator <node>', 'the aggregator (the only node that may create the streams)')
    .option('--analysis <id>', 'the analysis (default FLAME_ANALYSIS_ID)')
    .action((opts: { nodes: string; aggregator: string; analysis?: string }) => {
      const analysisId = opts.analysis ?? configFromEnv().analysisId;
      if (!analysisId) throw new BadRequestError('flame analysis nats-config: give --analysis ID (or set FLAME_ANALYSIS_ID)');
      const logins = opts.nodes.split(',').map((n) => ({ nodeId: n.trim(), password: randomBytes(18).toString('base64url') }));
      const admin = { user: 'flame-admin', password: randomBytes(18).toString('base64url') };
      const config = natsAuthorizationConfig({ analysisId, nodes: logins, aggregatorId: opts.aggregator, admin });
      if (json()) printResult({ config, logins: [...logins.map((l) => ({ node: l.nodeId, user: l.nodeId, password: l.password })), { node: '(operator)', user: admin.user, password: admin.password }] }, true);
      else {
        process.stdout.write(config);
        process.stderr.write(`logins (give each node only its own, as FLAME_NATS_USER / FLAME_NATS_PASSWORD):\n`);
        for (const l of logins) process.stderr.write(`  ${l.nodeId}  ${l.password}\n`);
        process.stderr.write(`  ${admin.user}  ${admin.password}   (operator only: provisioning, roster, cleanup)\n`);
      }
    });
}
