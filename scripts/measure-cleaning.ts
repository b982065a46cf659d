/**
 * Measure what `flame clean --auto` acts on against planted faults: a held-out Fashion-MNIST sample
 * drawn by scripts/make-sample.ts with another seed (flipped labels, darkened and brightened
 * images), plus planted near-duplicate copies (JPEG, resized, cropped, brightened; on the node of
 * their original or another), diagnosed by the federated diagnosis over three simulated nodes, then
 * cleaned with several `maxGivenConfidence` bars. Prints precision (acted-on files that really were
 * faulty) and recall (faults acted on) per bar. Figures: analyses/image-diagnosis/EXPERIMENTS.md.
 *
 *   npx tsx scripts/measure-cleaning.ts [seed ...]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { planCleaning } from '../analyses/image-cleaning/index.js';
import { diagnose } from '../analyses/image-diagnosis/index.js';
import type { CleaningRequest } from '../src/images/types.js';

const NODES = ['node-a', 'node-b', 'node-c'];
const BARS = [1, 0.05, 0.03, 0.02, 0.01, 0.005];
const COPIES = 15;

interface Truth {
  flipped: Array<{ path: string; true_class: string }>;
  darkened: string[];
  brightened: string[];
}

async function measure(seed: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-measure-'));
  try {
    execFileSync('npx', ['tsx', 'scripts/make-sample.ts', dir], { env: { ...process.env, SAMPLE_SEED: String(seed) }, stdio: 'ignore' });
    const truth = JSON.parse(await readFile(path.join(dir, 'truth.json'), 'utf8')) as Truth;
    const trueClass = new Map(truth.flipped.map((f) => [f.path, f.true_class]));
    const lighting = new Set([...truth.darkened, ...truth.brightened]);
    // copies of clean files (not flipped, not relit), every 17th file of the sorted list
    const clean = execFileSync('find', [dir, '-name', '*.png'], { encoding: 'utf8' })
      .trim().split('\n').map((f) => path.relative(dir, f)).filter((r) => !trueClass.has(r) && !lighting.has(r)).sort();
    const pairs: Array<[string, string]> = [];
    for (let k = 0; k < COPIES; k++) {
      const orig = clean[(k * 17) % clean.length];
      const [node, cls, file] = orig.split('/');
      const img = sharp(path.join(dir, orig));
      const kind = k % 4;
      const out = await (kind === 0 ? img.jpeg({ quality: 80 }) : kind === 1 ? img.resize(40, 40).png() : kind === 2 ? img.extract({ left: 1, top: 1, width: 27, height: 27 }).png() : img.linear(1.1, 15).png()).toBuffer();
      const toNode = NODES[(NODES.indexOf(node) + (k % 2)) % NODES.length];
      const rel = `${toNode}/${cls}/${path.parse(file).name}-copy.${kind === 0 ? 'jpg' : 'png'}`;
      await writeFile(path.join(dir, rel), out);
      pairs.push([orig, rel]);
    }
    const t0 = Date.now();
    const result = await diagnose({ auto: true, dataset_uuid: `held-out-${seed}` }, { nodes: NODES.map((id) => ({ id, data: { folder: path.join(dir, id) } })) });
    const seconds = (Date.now() - t0) / 1000;
    const inPair = new Set(pairs.flat());
    const faults = trueClass.size + lighting.size + pairs.length;
    for (const bar of BARS) {
      const plan = planCleaning({ ...(result as unknown as CleaningRequest), auto: true }, { maxGivenConfidence: bar });
      let right = 0;
      let relabelRight = 0;
      let relabels = 0;
      const wrongBy: Record<string, number> = {};
      for (const d of plan.decisions) {
        const p = (d.file as { path?: string }).path ?? d.key;
        const node = (d.file as { node?: string }).node ?? '';
        const rel = path.isAbsolute(p) ? path.relative(dir, p) : `${node}/${p}`;
        const faulty = trueClass.has(rel) || lighting.has(rel);
        const dup = inPair.has(rel) && d.reasons.some((r) => r.startsWith('duplicates'));
        if (faulty || dup) right++;
        else for (const r of d.reasons) wrongBy[r.split(':')[0]] = (wrongBy[r.split(':')[0]] ?? 0) + 1;
        if (d.action === 'corrected') {
          relabels++;
          if (trueClass.get(rel) === d.current_class) relabelRight++;
        }
      }
      process.stdout.write(
        `seed ${seed} bar ${bar}: acted ${plan.decisions.length} (deferred ${plan.deferred.length}), right ${right}, precision ${(right / Math.max(1, plan.decisions.length)).toFixed(3)}, recall ${(right / faults).toFixed(3)} of ${faults} faults; relabels ${relabels}, to the true class ${relabelRight}; wrong by task ${JSON.stringify(wrongBy)}; diagnosis ${seconds.toFixed(0)} s\n`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const seeds = process.argv.slice(2).map(Number);
for (const seed of seeds.length ? seeds : [1, 2]) await measure(seed);
