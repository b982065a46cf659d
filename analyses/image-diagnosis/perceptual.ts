/**
 * Perceptual fingerprints for the duplicates task, computed by the node that holds the image from
 * its luma plane: a 64-bit DCT hash (pHash) to find candidate pairs cheaply, and a low-frequency
 * DCT signature to verify them by correlation. Both come from one 32×32 2-D DCT of the image.
 *
 * Why two: on 28×28 Fashion-MNIST, plain items of one class (trousers, bags) share almost every
 * bit of any 64-bit hash, so a hash alone groups different objects; the signature keeps the
 * coefficients' magnitudes, which differ between two trousers but survive re-encoding, resizing,
 * 1–2 px crops and brightening (DC is left out of both, so a uniform brightness shift is invisible).
 */

/** Side of the grey square the DCT is taken of. */
export const DCT_SIZE = 32;
/** Side of the low-frequency block (DC excluded) both fingerprints are taken from. */
export const LOW_FREQUENCIES = 8;
/** Coefficients in a signature: the 8×8 block without DC. */
export const SIGNATURE_LENGTH = LOW_FREQUENCIES * LOW_FREQUENCIES - 1;

/** cos((2x+1)uπ / 2N), scaled so the 1-D DCT-II is orthonormal; row u, column x. */
const BASIS: Float64Array = (() => {
  const n = DCT_SIZE;
  const b = new Float64Array(LOW_FREQUENCIES * n);
  for (let u = 0; u < LOW_FREQUENCIES; u++) {
    const scale = u === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
    for (let x = 0; x < n; x++) b[u * n + x] = scale * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
  }
  return b;
})();

/** Bilinear resample of one `h0 × w0` plane to `h × w` (pixel centres aligned), up or down. */
function bilinear(src: Float32Array, h0: number, w0: number, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const fy = Math.min(h0 - 1, Math.max(0, ((y + 0.5) * h0) / h - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h0 - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(w0 - 1, Math.max(0, ((x + 0.5) * w0) / w - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w0 - 1, x0 + 1);
      const tx = fx - x0;
      const top = src[y0 * w0 + x0] * (1 - tx) + src[y0 * w0 + x1] * tx;
      const bottom = src[y1 * w0 + x0] * (1 - tx) + src[y1 * w0 + x1] * tx;
      out[y * w + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** Area-average a plane down to at most 4·DCT_SIZE per side first, so large photos alias no less than small ones. */
function shrink(src: Float32Array, h0: number, w0: number): { plane: Float32Array; h: number; w: number } {
  const cap = 4 * DCT_SIZE;
  const fy = Math.max(1, Math.floor(h0 / cap));
  const fx = Math.max(1, Math.floor(w0 / cap));
  if (fy === 1 && fx === 1) return { plane: src, h: h0, w: w0 };
  const h = Math.floor(h0 / fy);
  const w = Math.floor(w0 / fx);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h * fy; y++) for (let x = 0; x < w * fx; x++) out[Math.floor(y / fy) * w + Math.floor(x / fx)] += src[y * w0 + x];
  for (let i = 0; i < out.length; i++) out[i] /= fy * fx;
  return { plane: out, h, w };
}

/**
 * The plane resampled (32×32, bilinear) over a window centred on its intensity centroid and sized by
 * its spread (±FRAME_SPREADS standard deviations, one scale for both axes), weights = luma above the darkest pixel.
 * Moments are averages over every pixel, so JPEG noise, resizing, brightening and a crop of a few
 * border pixels barely move them: copies are framed alike. Outside the image counts as its darkest.
 */
function momentFrame(p: { plane: Float32Array; h: number; w: number }): Float64Array | undefined {
  const { plane, h, w } = p;
  let lo = Infinity;
  for (const v of plane) if (v < lo) lo = v;
  let m = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = plane[y * w + x] - lo;
      m += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  if (!(m > 1e-6)) return undefined;
  const cx = mx / m;
  const cy = my / m;
  let vx = 0;
  let vy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = plane[y * w + x] - lo;
      vx += v * (x + 0.5 - cx) ** 2;
      vy += v * (y + 0.5 - cy) ** 2;
    }
  }
  // one scale for both axes: a narrower garment must stay narrower, not be stretched to match
  const sx = Math.sqrt((vx + vy) / (2 * m));
  const sy = sx;
  if (!(sx > 0.25)) return undefined;
  const n = DCT_SIZE;
  const out = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const fy = cy + ((j + 0.5) / n - 0.5) * 2 * FRAME_SPREADS * sy - 0.5;
    for (let i = 0; i < n; i++) {
      const fx = cx + ((i + 0.5) / n - 0.5) * 2 * FRAME_SPREADS * sx - 0.5;
      out[j * n + i] = sampleAt(plane, h, w, fy, fx, lo);
    }
  }
  return out;
}

/** Bilinear sample at fractional pixel (fy, fx); `outside` beyond the edges. */
function sampleAt(plane: Float32Array, h: number, w: number, fy: number, fx: number, outside: number): number {
  const y0 = Math.floor(fy);
  const x0 = Math.floor(fx);
  const ty = fy - y0;
  const tx = fx - x0;
  const a = pixelOr(plane, h, w, y0, x0, outside);
  const b = pixelOr(plane, h, w, y0, x0 + 1, outside);
  const c = pixelOr(plane, h, w, y0 + 1, x0, outside);
  const d = pixelOr(plane, h, w, y0 + 1, x0 + 1, outside);
  return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
}

// A module-level function, not a closure per sample: 1,024 samples per image made closures the
// load phase's top cost.
function pixelOr(plane: Float32Array, h: number, w: number, y: number, x: number, outside: number): number {
  return y < 0 || x < 0 || y >= h || x >= w ? outside : plane[y * w + x];
}

/** Half-width of the framing window, in standard deviations of the intensity along each axis. */
export const FRAME_SPREADS = 2;

/**
 * The 8×8 lowest 2-D DCT coefficients of the luma framed by its moments at 32×32 (a flat image:
 * resampled whole), each multiplied by 1 + u + v, row-major (index 0 is DC). The weight evens out
 * the natural fall-off of image spectra, so finer structure — what tells two trousers apart — counts
 * in the correlation as much as the silhouette does.
 */
export function lowFrequencyDct(luma: Float32Array, height: number, width: number): Float64Array {
  const small = shrink(luma, height, width);
  const n = DCT_SIZE;
  const k = LOW_FREQUENCIES;
  const g = momentFrame(small) ?? bilinear(small.plane, small.h, small.w, n, n);
  // separable: rows first (n × k), then columns (k × k)
  const rows = new Float64Array(n * k);
  for (let y = 0; y < n; y++) {
    for (let u = 0; u < k; u++) {
      let s = 0;
      for (let x = 0; x < n; x++) s += g[y * n + x] * BASIS[u * n + x];
      rows[y * k + u] = s;
    }
  }
  // columns, then the 1 + u + v weight
  const out = new Float64Array(k * k);
  for (let v = 0; v < k; v++) {
    for (let u = 0; u < k; u++) {
      let s = 0;
      for (let y = 0; y < n; y++) s += rows[y * k + u] * BASIS[v * n + y];
      out[v * k + u] = s * (1 + u + v);
    }
  }
  return out;
}

/**
 * pHash: one bit per low-frequency coefficient (the 8×8 block; DC's slot holds whether the block's
 * mean AC coefficient is positive, so the hash has 64 bits), set when the coefficient exceeds the
 * median of the 63 AC coefficients. 16 hex digits.
 */
export function pHashOf(coefficients: Float64Array): string {
  const ac = Array.from(coefficients.subarray(1));
  const sorted = [...ac].sort((a, b) => a - b);
  const median = sorted[31]; // of 63 values, the 32nd
  const meanAc = ac.reduce((a, b) => a + b, 0) / ac.length;
  let hex = '';
  for (let byte = 0; byte < 8; byte++) {
    let b = 0;
    for (let bit = 0; bit < 8; bit++) {
      const i = byte * 8 + bit;
      b = (b << 1) | ((i === 0 ? meanAc > 0 : coefficients[i] > median) ? 1 : 0);
    }
    hex += b.toString(16).padStart(2, '0');
  }
  return hex;
}

/**
 * The signature: the 63 AC coefficients of the 8×8 block divided by their Euclidean norm and
 * quantised to signed bytes (×127), as 126 hex digits. All zeros for a flat image.
 */
export function signatureOf(coefficients: Float64Array): string {
  let norm = 0;
  for (let i = 1; i < coefficients.length; i++) norm += coefficients[i] * coefficients[i];
  norm = Math.sqrt(norm);
  let hex = '';
  for (let i = 1; i < coefficients.length; i++) {
    const q = norm > 1e-9 ? Math.max(-127, Math.min(127, Math.round((coefficients[i] / norm) * 127))) : 0;
    hex += (q & 0xff).toString(16).padStart(2, '0');
  }
  return hex;
}

/** A signature's coefficients back as numbers (-127…127). Throws on anything but 126 hex digits. */
export function parseSignature(hex: string): Int8Array {
  if (typeof hex !== 'string' || hex.length !== 2 * SIGNATURE_LENGTH || !/^[0-9a-f]*$/.test(hex)) {
    throw new Error(`expected ${2 * SIGNATURE_LENGTH} lower-case hex digits`);
  }
  const out = new Int8Array(SIGNATURE_LENGTH);
  for (let i = 0; i < SIGNATURE_LENGTH; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16) << 24 >> 24;
  return out;
}

/** Cosine similarity of two signatures (their AC parts are zero-mean images' spectra, so this is a correlation); 0 when one is flat. */
export function signatureCorrelation(a: Int8Array, b: Int8Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}
