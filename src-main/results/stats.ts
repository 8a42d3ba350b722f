/**
 * Statistics for results tables: sample mean and standard deviation, a two-stage (hierarchical)
 * bootstrap over seeds and, within each seed, evaluation units (volumes, or slices when there is a
 * single validation volume), and a paired t-test. Pure functions; every random draw comes from a
 * seeded generator, so a table computed twice is the same table.
 */
import { Rng } from '../util/random.js';

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (ddof 1); NaN for fewer than two values (no spread is known). */
export function sampleStd(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/** The q-quantile (0..1) of sorted values, linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Paired data for one comparison: per seed, the per-unit values of each arm, unit i of every arm
 * being the same volume (or slice). `groups[s][arm][i]`.
 */
export type Groups = number[][][];

export interface Interval {
  estimate: number;
  low: number;
  high: number;
  /** Bootstrap resamples where the statistic was defined. */
  resamples: number;
}

/**
 * Two-stage bootstrap percentile interval (level 0.95 by default) of `stat` over paired groups:
 * seeds are drawn with replacement, then units with replacement within each drawn seed, so both the
 * seed-to-seed and the volume-to-volume variation reach the interval. `stat` maps the arms' pooled
 * values (arm → values, unit-aligned) to a number; NaN resamples are skipped.
 */
export function hierarchicalBootstrap(
  groups: Groups,
  stat: (arms: number[][]) => number,
  { resamples = 4000, level = 0.95, seed = 20260 } = {},
): Interval {
  const arms = groups[0]?.length ?? 0;
  const pooled = (gs: Groups) => Array.from({ length: arms }, (_, a) => gs.flatMap((g) => g[a]));
  const estimate = stat(pooled(groups));
  const rng = new Rng(seed);
  const values: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const drawn: number[][] = Array.from({ length: arms }, () => []);
    for (let s = 0; s < groups.length; s++) {
      const g = groups[rng.int(groups.length)];
      const n = g[0].length;
      for (let i = 0; i < n; i++) {
        const u = rng.int(n);
        for (let a = 0; a < arms; a++) drawn[a].push(g[a][u]);
      }
    }
    const v = stat(drawn);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return {
    estimate,
    low: quantileSorted(values, tail),
    high: quantileSorted(values, 1 - tail),
    resamples: values.length,
  };
}

/** ln Γ(x), Lanczos approximation (g = 7, n = 9): ~15 significant digits for x > 0. */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (Numerical Recipes' betacf, modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value of Student's t with `df` degrees of freedom. */
export function tTwoSidedP(t: number, df: number): number {
  if (!Number.isFinite(t)) return Number.isNaN(t) ? NaN : 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

export interface TTest {
  n: number;
  meanDiff: number;
  t: number;
  df: number;
  p: number;
}

/** Paired t-test of the differences (one per pair); NaN figures when n < 2. */
export function pairedTTest(diffs: readonly number[]): TTest {
  const n = diffs.length;
  const m = mean(diffs);
  const sd = sampleStd(diffs);
  const t = n >= 2 ? m / (sd / Math.sqrt(n)) : NaN;
  return { n, meanDiff: m, t, df: n - 1, p: n >= 2 ? tTwoSidedP(t, n - 1) : NaN };
}
