/**
 * The files an attacker's crafted diagnosis result points at, for the "nothing outside the dataset"
 * attacks: a hospital's dataset folder (the cleaning fixture's nine PNGs) next to secrets it must
 * never leak — the node's X25519 private key, an SSH host key, a patient image and an IDX file whose
 * pixels are the key's raw bytes — and links and a non-image inside the dataset that lead to them.
 * The crafted result is the fixture's real diagnosis plus entries naming those files by absolute
 * paths, `../` paths (absolute and relative to the working directory, which the tests set to the
 * dataset folder), symbolic links inside the dataset and an IDX virtual path.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { encodeIdx } from '../../src/images/index.js';
import type { DatasetFile, DiagnosisResponse } from '../../src/images/types.js';
import { makeFixture, type Fixture } from '../cleaning/fixture.js';

/** One secret: its file and byte strings that must not appear anywhere the attack could put them. */
export interface Secret {
  path: string;
  /** Byte strings of the secret (its text, base64, hex, raw key bytes) to search for. */
  needles: Buffer[];
}

/** A crafted entry: the path the result names, where it goes in the cleaning, why it must be refused. */
export interface CraftedFile {
  uuid: string;
  /** The path as the result names it (key, or `path` field when `byUuid`). */
  path: string;
  /** Keyed by uuid with the path in a `path` field (as `flame diagnose` writes), else keyed by path. */
  byUuid: boolean;
  /** kept (an inlier of every task) or corrected (a confident mislabel, relabelled into `to`). */
  as: 'kept' | 'corrected';
  from: string;
  to: string;
  /** The refusal reason the fixed code gives. */
  reason: 'outside_roots' | 'not_an_image';
}

/** The dataset, the secrets and the crafted result. */
export interface OutsideFixture {
  fx: Fixture;
  /** The dataset folder (class sub-folders) the operator passes as the root. */
  root: string;
  secrets: Secret[];
  crafted: CraftedFile[];
  /** The fixture's diagnosis with the crafted entries added. */
  result: DiagnosisResponse;
}

const KEY_BYTES = 32;

function needlesOf(bytes: Buffer): Buffer[] {
  const text = bytes.toString('latin1');
  // the text, and a middle slice (a partial copy must not slip through), in the encodings a copy or
  // a data: URI could carry it
  const mid = bytes.subarray(Math.floor(bytes.length / 4), Math.floor(bytes.length / 4) + Math.min(24, bytes.length));
  return [bytes, mid, Buffer.from(bytes.toString('base64')), Buffer.from(mid.toString('base64').slice(4, 28)), Buffer.from(bytes.toString('hex')), Buffer.from(JSON.stringify(text).slice(1, -1))];
}

/** Lay out the dataset and the secrets under `dir`; build the crafted result. */
export async function makeOutsideFixture(dir: string): Promise<OutsideFixture> {
  const fx = await makeFixture(dir);
  const root = fx.root;
  await mkdir(join(dir, 'keys'), { recursive: true });
  await mkdir(join(dir, 'etc', 'ssh'), { recursive: true });
  await mkdir(join(dir, 'elsewhere'), { recursive: true });

  const node = generateKeyPairSync('x25519');
  const nodePem = Buffer.from(node.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const nodeKey = join(dir, 'keys', 'node-x25519.pem');
  await writeFile(nodeKey, nodePem, { mode: 0o600 });
  const rawKey = (node.privateKey.export({ format: 'jwk' }) as { d: string }).d;
  const keyBytes = Buffer.from(rawKey, 'base64url');
  if (keyBytes.length !== KEY_BYTES) throw new Error('fixture: x25519 key is not 32 bytes');

  const host = generateKeyPairSync('ed25519');
  const hostPem = Buffer.from(host.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const hostKey = join(dir, 'etc', 'ssh', 'ssh_host_ed25519_key');
  await writeFile(hostKey, hostPem, { mode: 0o600 });

  // an image outside the dataset whose grey pixels are the raw private key (8 × 4 px, lossless PNG)
  const patient = join(dir, 'elsewhere', 'patient.png');
  await sharp(keyBytes, { raw: { width: 8, height: 4, channels: 1 } }).toColourspace('b-w').png().toFile(patient);
  // an IDX file outside the dataset whose image 0 is the raw private key
  const idx = join(dir, 'elsewhere', 'scan.idx');
  await writeFile(idx, encodeIdx([1, 4, 8], keyBytes));

  // inside the dataset: links that lead out, and a file with an image name that is not an image
  await symlink(patient, join(root, 'cat', 'linked.png'));
  await symlink(hostKey, join(root, 'dog', 'host.png'));
  await symlink(join(dir, 'keys'), join(root, 'cat', 'sub'));
  const notes = join(root, 'bird', 'notes.png');
  const notesText = Buffer.from('patient list (not an image): 4711 Jane Roe, 4712 John Doe, MRN-99812\n');
  await writeFile(notes, notesText);

  const secrets: Secret[] = [
    { path: nodeKey, needles: [...needlesOf(nodePem), ...needlesOf(keyBytes)] },
    { path: hostKey, needles: needlesOf(hostPem) },
    { path: notes, needles: needlesOf(notesText) },
  ];
  const cwdRel = (p: string) => relative(root, p); // the tests run the CLI in `root`
  const crafted: CraftedFile[] = [
    { uuid: 'evil-abs-host-key', path: hostKey, byUuid: false, as: 'kept', from: 'cat', to: 'cat', reason: 'outside_roots' },
    { uuid: 'evil-dotdot-node-key', path: `${root}/../keys/node-x25519.pem`, byUuid: true, as: 'corrected', from: 'cat', to: 'dog', reason: 'outside_roots' },
    { uuid: 'evil-relative-node-key', path: cwdRel(nodeKey), byUuid: false, as: 'kept', from: 'dog', to: 'dog', reason: 'outside_roots' },
    { uuid: 'evil-patient-image', path: patient, byUuid: true, as: 'corrected', from: 'dog', to: 'bird', reason: 'outside_roots' },
    { uuid: 'evil-idx-image', path: `${idx}#0`, byUuid: false, as: 'kept', from: 'bird', to: 'bird', reason: 'outside_roots' },
    { uuid: 'evil-link-to-image', path: join(root, 'cat', 'linked.png'), byUuid: false, as: 'kept', from: 'cat', to: 'cat', reason: 'outside_roots' },
    { uuid: 'evil-link-to-host-key', path: join(root, 'dog', 'host.png'), byUuid: true, as: 'corrected', from: 'dog', to: 'cat', reason: 'outside_roots' },
    { uuid: 'evil-linked-folder', path: join(root, 'cat', 'sub', 'node-x25519.pem'), byUuid: false, as: 'kept', from: 'cat', to: 'cat', reason: 'outside_roots' },
    { uuid: 'evil-not-an-image', path: notes, byUuid: true, as: 'corrected', from: 'bird', to: 'dog', reason: 'not_an_image' },
  ];

  const result = structuredClone(fx.diagnosis);
  const classes = result.tasks[0].datasets.outliers.classes;
  const template = fx.file['cat/1'];
  for (const c of crafted) {
    const confident = classes.map((k) => (k === c.to ? 0.9 : 0.1 / (classes.length - 1)));
    const entry: DatasetFile & { path?: string } = {
      ...template,
      uuid: c.uuid,
      original_class: c.from,
      current_class: c.as === 'corrected' ? c.to : c.from,
      confidence_vectors: [confident],
      ...(c.byUuid ? { path: c.path } : {}),
    };
    const key = c.byUuid ? c.uuid : c.path;
    for (const [i, task] of result.tasks.entries()) {
      // corrected: an outlier of mislabeled_images (filed under its suggested class); inlier elsewhere
      const outlier = i === 0 && c.as === 'corrected';
      const ds = outlier ? task.datasets.outliers : task.datasets.inliers;
      (ds.class_files[outlier ? c.to : c.from] ??= {})[key] = outlier ? entry : { ...entry, current_class: c.from };
    }
  }
  return { fx, root, secrets, crafted, result };
}

/** Every regular file under `root` (relative path → bytes); links are not followed. */
export async function readTree(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.set(relative(root, p), await readFile(p));
    }
  };
  await walk(root);
  return out;
}

/**
 * The secret needles in an encoded file: in its bytes, and in its decoded pixels (all channels
 * interleaved, and channel 0 alone, which holds a grey image's values once made RGB).
 */
export async function secretsInFile(name: string, bytes: Buffer, secrets: Secret[]): Promise<string[]> {
  const hits = secretsIn(name, bytes, secrets);
  const all = await sharp(bytes).raw().toBuffer().catch(() => undefined);
  const first = await sharp(bytes).extractChannel(0).raw().toBuffer().catch(() => undefined);
  for (const [what, px] of [['pixels', all], ['channel 0', first]] as const) if (px) hits.push(...secretsIn(`${name} (${what})`, px, secrets));
  return [...new Set(hits)];
}

/** The needles of `secrets` found in `haystack` (`name: secret path`), for a readable failure. */
export function secretsIn(name: string, haystack: Buffer, secrets: Secret[]): string[] {
  const hits: string[] = [];
  for (const s of secrets) if (s.needles.some((n) => haystack.includes(n))) hits.push(`${name}: ${s.path}`);
  return hits;
}
