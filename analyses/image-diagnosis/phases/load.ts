/**
 * The opening phase: nodes decode their images and send channel sums, signal histograms, thumbnail
 * shapes (and, for the duplicates task, per-image hashes); the aggregator settles the setup every
 * later phase uses: classes, pooled pixel mean/std, the common shape, quality cut-offs, duplicates.
 */
import { BadRequestError } from 'flame-sdk';
import { meanStd, mergeSums, toChannelSums, type ChannelSums } from 'flame-sdk/images';
import { overLimit } from 'flame-sdk';
import type { FlameSDK } from 'flame-sdk';
import { DisclosureControl } from 'flame-sdk';
import type { OpeningPhase } from 'flame-sdk';
import { checkCutoffsFrom, checkValues, countCheckImage, emptyCheckHistograms, mergeCheckHistograms, needsCheckHistograms, type CheckHistograms } from '../checks.js';
import { discloseLoadCounts } from '../disclosure.js';
import { countImage, cutoffsFrom, emptyHistograms, mergeHistograms, signalValues, type SignalHistograms } from '../distribution.js';
import { DEFAULT_DUPLICATE_DISTANCE, DEFAULT_MIN_CORRELATION, findDuplicates, type HashedImage } from '../duplicates.js';
import { SIGNATURE_LENGTH } from '../perceptual.js';
import type { DiagnosisAggregate, DiagnosisSetup } from '../global.js';
import { loadLocalData } from '../load.js';
import { featureFilterCount } from '../model.js';
import type { DiagnosisContext, NodeState } from './context.js';

/**
 * What a node sends in the load round.
 *
 * @property load.__type.hashes.__type.uuid The images' uuids.
 * @property load.__type.hashes.__type.phash Their pHashes, 16 hex digits each.
 * @property load.__type.hashes.__type.signature Their low-frequency DCT signatures, 126 hex digits each.
 * @property load.__type.hashes.__type.digest Their content digests, 16 hex digits each.
 */
export type LoadPartial = {
  /** The node's load summary: counts, sums and histograms, never an image. */
  load: {
    /** The classes the node's data names, sorted. */
    classes: string[];
    /** Images the node read. */
    count: number;
    /** Channel sums over those images (for the pooled mean/std). */
    sums: ChannelSums;
    /** The node's signal histograms, under its disclosure policy. */
    histograms: SignalHistograms;
    /** `h×w` of thumbnails → count, and whether any image has colour. */
    shapes: Record<string, number>;
    /** Whether any of its images has colour. */
    colour: boolean;
    /** Per image, for the duplicates task only: `uuid`, `phash`, `signature` and `digest`, in the same order. */
    hashes?: { uuid: string[]; phash: string[]; signature: string[]; digest: string[] };
    /** For the grayscale and low_information checks only: their signal histograms, under the node's policy. */
    checkHistograms?: CheckHistograms;
  };
};

/** Reads the node's images into a fresh state (before the load round, and on a resume after a restart). */
export async function readImages(sdk: FlameSDK, ctx: DiagnosisContext): Promise<NodeState> {
  const { options } = ctx;
  const spec = options.data?.[sdk.nodeId] ?? options.data?.['*'];
  const data = await loadLocalData(sdk, spec, {
    concurrency: options.concurrency,
    onProgress: (done, total) => {
      if (done % 256 === 0 || done === total) options.onProgress?.({ phase: 'load', progress: ctx.progress(), node: sdk.nodeId });
    },
  });
  const control = new DisclosureControl(sdk.config.disclosure);
  control.requireRecords(data.images.length, `diagnosis on node "${sdk.nodeId}" (images)`);
  return { nodeId: sdk.nodeId, nodeIndex: sdk.config.participants.indexOf(sdk.nodeId), data, control };
}

/** Node side: the load round's summaries of the node's images, under its disclosure policy. */
export function loadSummary(s: NodeState, withHashes: boolean, withChecks = false): LoadPartial {
  const { data, control } = s;
  const histograms = emptyHistograms();
  const shapes: Record<string, number> = {};
  let colourImages = 0;
  for (const im of data.images) {
    countImage(histograms, signalValues(im.signals, im.meta));
    const key = `${im.signals.thumbHeight}x${im.signals.thumbWidth}`;
    shapes[key] = (shapes[key] ?? 0) + 1;
    if (im.signals.thumbChannels === 3) colourImages++;
  }
  const shared = discloseLoadCounts(control, { histograms, shapes, colourImages });
  return {
    load: {
      classes: [...new Set([...data.classes, ...data.images.map((i) => i.label)])].sort(),
      count: data.images.length,
      sums: mergeSums(data.images.map((i) => toChannelSums(i.stats))),
      histograms: shared.histograms,
      shapes: shared.shapes,
      colour: shared.colour,
      ...(withChecks ? { checkHistograms: checkHistograms(s) } : {}),
      ...(withHashes
        ? {
            hashes: {
              uuid: data.images.map((i) => i.uuid),
              phash: data.images.map((i) => i.signals.phash),
              signature: data.images.map((i) => i.signals.signature),
              digest: data.images.map((i) => i.signals.digest),
            },
          }
        : {}),
    },
  };
}

const HEX = (digits: number) => new RegExp(`^[0-9a-f]{${digits}}$`);
const FIELDS: ReadonlyArray<[keyof NonNullable<LoadPartial['load']['hashes']>, RegExp | undefined]> = [
  ['uuid', undefined],
  ['phash', HEX(16)],
  ['signature', HEX(2 * SIGNATURE_LENGTH)],
  ['digest', HEX(16)],
];

/** A peer's per-image hashes, checked (one entry per image it counted, well-formed hex) before any is compared. */
function nodeHashes(nodeId: string, h: unknown, count: number): HashedImage[] {
  if (!h || typeof h !== 'object') throw new BadRequestError(`duplicates: node "${nodeId}" sent no image hashes`);
  const fields = h as Record<string, unknown>;
  for (const [name, pattern] of FIELDS) {
    const list = fields[name];
    if (!Array.isArray(list) || list.length !== count) throw new BadRequestError(`duplicates: node "${nodeId}" sent hashes.${name} that is not a list of its ${count} images`);
    const bad = list.findIndex((v) => typeof v !== 'string' || (pattern ? !pattern.test(v) : v.length === 0 || v.length > 200));
    if (bad >= 0) throw new BadRequestError(`duplicates: node "${nodeId}" sent a malformed hashes.${name}[${bad}]`);
  }
  const { uuid, phash, signature, digest } = fields as Record<string, string[]>;
  return uuid.map((id, i) => ({ node: nodeId, uuid: id, phash: phash[i], signature: signature[i], digest: digest[i] }));
}

/** The node's check histograms (checks.ts), each under its policy as the signal histograms are. */
function checkHistograms(s: NodeState): CheckHistograms {
  const h = emptyCheckHistograms();
  for (const im of s.data.images) countCheckImage(h, checkValues(im.signals));
  return { chroma: s.control.histogram('histogram_bins', h.chroma), entropy: s.control.histogram('histogram_bins', h.entropy) };
}

/** Aggregator side: the setup, from every node's load summary. `maxClasses` caps the union of their classes. */
export function setupFrom(partials: ReadonlyArray<{ nodeId: string; value: LoadPartial }>, ctx: DiagnosisContext, maxClasses: number): DiagnosisSetup {
  const { options, tasks, need } = ctx;
  const loads = partials.map((r) => r.value.load);
  const seen = [...new Set(loads.flatMap((l) => l.classes))].sort();
  let classes: string[];
  if (options.classes) {
    const known = options.classes;
    const unknown = seen.filter((c) => !known.includes(c));
    if (unknown.length) throw new BadRequestError(`classes: the nodes hold images of unknown class(es) ${unknown.map((c) => `"${c}"`).join(', ')} (request classes: ${known.join(', ')})`);
    classes = [...known];
  } else classes = seen;
  // Peers' class lists are untrusted too: their union is capped before any training.
  if (classes.length > maxClasses) throw overLimit('diagnosis: the nodes hold images of too many classes', classes.length, 'maxClasses', maxClasses);
  const count = loads.reduce((a, l) => a + l.count, 0);
  if (count === 0) throw new BadRequestError('diagnosis: no node has a readable image');
  if (need.cl && classes.length < 2) throw new BadRequestError(`mislabeled_images needs at least 2 classes, the dataset has ${classes.length}`);
  const { mean, std_dev } = meanStd(mergeSums(loads.map((l) => l.sums)));
  const shapes: Record<string, number> = {};
  for (const l of loads) for (const [k, c] of Object.entries(l.shapes)) shapes[k] = (shapes[k] ?? 0) + c;
  const [common] = Object.entries(shapes).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
  const [height, width] = common.split('x').map(Number);
  const duplicates: DiagnosisSetup['duplicates'] = {};
  if (tasks.includes('duplicates')) {
    const hashed: HashedImage[] = partials.flatMap((r) => nodeHashes(r.nodeId, r.value.load.hashes, r.value.load.count));
    for (const r of partials) duplicates[r.nodeId] = {};
    const marks = findDuplicates(hashed, options.duplicateDistance ?? DEFAULT_DUPLICATE_DISTANCE, options.duplicateCorrelation ?? DEFAULT_MIN_CORRELATION);
    for (const [i, mark] of marks) duplicates[hashed[i].node][hashed[i].uuid] = mark;
  }
  return {
    tasks,
    classes,
    mean,
    std_dev,
    shape: { channels: loads.some((l) => l.colour) ? 3 : 1, height, width },
    cutoffs: cutoffsFrom(mergeHistograms(loads.map((l) => l.histograms))),
    duplicates,
    count,
    filters: featureFilterCount(count, need.train),
    ...(needsCheckHistograms(tasks) ? { checks: checkCutoffsFrom(mergeCheckHistograms(partials.map((r) => ({ node: r.nodeId, histograms: r.value.load.checkHistograms })))) } : {}),
  };
}

/** The load phase. A hospital lost while its images are read is left out (its images are not in the result). */
export function loadPhase(ctx: DiagnosisContext): OpeningPhase<NodeState, DiagnosisAggregate, LoadPartial> {
  return {
    name: 'load',
    local: ({ state }) => loadSummary(state, ctx.tasks.includes('duplicates'), needsCheckHistograms(ctx.tasks)),
    merge(partials, { sdk }) {
      const setup = setupFrom(partials, ctx, sdk.config.limits.maxClasses);
      ctx.report(sdk, 'load', 0.25);
      return { phase: 'load', setup };
    },
    tolerates: true,
  };
}
