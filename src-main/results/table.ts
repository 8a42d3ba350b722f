/**
 * Results tables, built only from a job's or a study's own validation evaluations (never from
 * `kdmri eval` rows, other splits or other jobs), with the number of volumes and seeds behind every
 * figure, and rendered as text, JSON, CSV, Markdown or LaTeX.
 *
 *  - A job's table: rows ZF, CS, teacher, student, KD; one column per degradation (a job has one);
 *    each figure is the mean over validation volumes ± 2·std (sample std), the reference report.
 *  - A study's table (kdmri study): the same rows plus student-long, one column per acceleration;
 *    each figure is the mean over seeds of the per-seed validation mean ± the std over seeds; with
 *    the share of the student→teacher gap that KD closes and paired comparisons of KD against the
 *    student and student-long (results/stats.ts).
 *
 * A spread over fewer than two values is unknown and prints as "n = 1", never as "± 0".
 */
import type {
  PairedComparison,
  ResultsCell,
  ResultsFigure,
  ResultsTable,
  TableFormat,
} from '../contract/api.js';
import { degradationDetail, degradationLabel } from '../contract/domain.js';
import type { EvaluationRepo, EvaluationRow, ExperimentRepo } from '../store/db.js';
import { hierarchicalBootstrap, mean, pairedTTest, sampleStd, type Groups } from './stats.js';

/** Row order of every table. */
export const TABLE_MODELS = ['zf', 'lr', 'cs', 'teacher', 'student', 'student-long', 'kd'] as const;
export type TableModel = (typeof TABLE_MODELS)[number];

export const MODEL_NAMES: Record<TableModel, string> = {
  zf: 'Zero-filled',
  lr: 'Low resolution',
  cs: 'CS (ℓ1-wavelet)',
  teacher: 'Teacher',
  student: 'Student',
  'student-long': 'Student (long)',
  kd: 'KD student',
};

/** What tables read from the store (the services reach the store through a port of this shape). */
export interface TableSource {
  jobs: { get(id: string): { datasetId: number } | null | undefined };
  evaluations: Pick<EvaluationRepo, 'tableRows'>;
  experiments: Pick<ExperimentRepo, 'get' | 'jobs'>;
}

export class TableError extends Error {
  override name = 'TableError';
}

const columnKey = (e: EvaluationRow) => e.maskHash ?? e.degradationKey ?? e.degradation;

function columnOf(e: EvaluationRow, key: string): ResultsTable['columns'][number] {
  const d = e.degradationJson;
  return {
    key,
    label: d ? degradationLabel(d) : e.degradation,
    detail: d ? degradationDetail(d) : e.degradation,
    acceleration: e.acceleration,
  };
}

/** Make labels unique: two masks with one label (other seed, axis, centre) show their details. */
function distinctLabels(columns: ResultsTable['columns']): void {
  for (const c of columns) {
    if (columns.filter((o) => o.label === c.label).length > 1) c.label = c.detail;
  }
}

const figure = (m: number, spread: number, n: number): ResultsFigure => ({
  mean: m,
  spread: n >= 2 ? spread : NaN,
  n,
});

/** The table of one job's own validation evaluations. */
export function jobTable(db: TableSource, jobId: string): ResultsTable {
  const job = db.jobs.get(jobId);
  if (!job) throw new TableError(`no job ${jobId} in the database`);
  const evals = db.evaluations.tableRows([jobId]);
  const columns: ResultsTable['columns'] = [];
  for (const e of evals) {
    const key = columnKey(e);
    if (!columns.some((c) => c.key === key)) columns.push(columnOf(e, key));
  }
  columns.sort((a, b) => (a.acceleration ?? Infinity) - (b.acceleration ?? Infinity));
  distinctLabels(columns);
  const rows = TABLE_MODELS.flatMap((model) => {
    const cells = columns.map((c): ResultsCell | null => {
      const e = evals.find((x) => x.runKind === model && columnKey(x) === c.key);
      if (!e) return null;
      return {
        psnr: figure(e.psnr, e.psnrStd2, e.volumes),
        ssim: figure(e.ssim, e.ssimStd2, e.volumes),
        nmse: figure(e.nmse, e.nmseStd2, e.volumes),
        volumes: e.volumes,
        seeds: 1,
      };
    });
    return cells.some((c) => c !== null) ? [{ model, cells }] : [];
  });
  const volumes = Math.max(0, ...evals.map((e) => e.volumes));
  const notes = [
    `validation split only; mean ± 2·std (sample std) over ${volumes} validation volume${volumes === 1 ? '' : 's'}`,
  ];
  if (volumes === 1) notes.push('one validation volume: its spread is unknown and shows as n = 1');
  return {
    kind: 'job',
    id: jobId,
    datasetId: job.datasetId,
    split: 'validation',
    spread: '2std-volumes',
    columns,
    rows,
    notes,
  };
}

interface StudyEval {
  seed: number;
  model: TableModel;
  e: EvaluationRow;
}

/** Per-unit PSNR of an evaluation: per volume, or per slice when it scored a single volume. */
function unitsOf(e: EvaluationRow): { unit: 'volume' | 'slice'; values: number[] } {
  if (e.perVolume.length === 1 && e.perVolume[0].slices.length > 1)
    return { unit: 'slice', values: e.perVolume[0].slices.map((s) => s.psnr) };
  return { unit: 'volume', values: e.perVolume.map((v) => v.psnr) };
}

/**
 * Groups (per seed, per arm, per unit) for the given models at one column, over the seeds where
 * every arm scored the same slices (equal data hashes) with the same number of units.
 */
function pairedGroups(
  evals: StudyEval[],
  models: TableModel[],
): { groups: Groups; unit: 'volume' | 'slice' } {
  const seeds = [...new Set(evals.map((x) => x.seed))].sort((a, b) => a - b);
  const groups: Groups = [];
  let unit: 'volume' | 'slice' = 'volume';
  for (const s of seeds) {
    const arms = models.map((m) => evals.find((x) => x.seed === s && x.model === m)?.e);
    if (arms.some((a) => !a)) continue;
    const hashes = new Set(arms.map((a) => a!.dataHash));
    if (hashes.size !== 1) continue;
    const units = arms.map((a) => unitsOf(a!));
    if (units.some((u) => u.values.length !== units[0].values.length || u.values.length === 0)) continue;
    unit = units[0].unit;
    groups.push(units.map((u) => u.values));
  }
  return { groups, unit };
}

function compare(evals: StudyEval[], a: TableModel, b: TableModel): PairedComparison | null {
  const { groups, unit } = pairedGroups(evals, [a, b]);
  if (groups.length === 0) return null;
  const diffMean = (arms: number[][]) => mean(arms[0].map((x, i) => x - arms[1][i]));
  const ci = hierarchicalBootstrap(groups, diffMean);
  const perSeed = groups.map((g) => diffMean(g));
  const t = pairedTTest(perSeed);
  const all = groups.flatMap((g) => g[0].map((x, i) => x - g[1][i]));
  return {
    a,
    b,
    unit,
    units: all.length,
    seeds: groups.length,
    meanDiff: ci.estimate,
    low: ci.low,
    high: ci.high,
    t: t.t,
    df: t.df,
    p: t.p,
    wins: all.filter((d) => d > 0).length / all.length,
  };
}

/** The table of a study: every job's validation evaluations, figures over seeds. */
export function studyTable(db: TableSource, studyId: string): ResultsTable {
  const study = db.experiments.get(studyId);
  if (!study) throw new TableError(`no study ${studyId} in the database`);
  const members = db.experiments.jobs(studyId);
  const byAcc = new Map<number, StudyEval[]>();
  const columns: ResultsTable['columns'] = [];
  for (const j of members) {
    if (j.acc === null || j.seed === null) continue;
    for (const e of db.evaluations.tableRows([j.jobId])) {
      let model: TableModel;
      if (j.role === 'student-long') {
        if (e.runKind !== 'student') continue; // its baselines repeat the main job's
        model = 'student-long';
      } else if ((TABLE_MODELS as readonly string[]).includes(e.runKind)) model = e.runKind as TableModel;
      else continue;
      const list = byAcc.get(j.acc) ?? [];
      list.push({ seed: j.seed, model, e });
      byAcc.set(j.acc, list);
      if (!columns.some((c) => c.key === String(j.acc))) columns.push(columnOf(e, String(j.acc)));
    }
  }
  columns.sort((a, b) => Number(a.key) - Number(b.key));
  const rows = TABLE_MODELS.flatMap((model) => {
    const cells = columns.map((c): ResultsCell | null => {
      const es = (byAcc.get(Number(c.key)) ?? []).filter((x) => x.model === model).map((x) => x.e);
      if (es.length === 0) return null;
      const over = (k: 'psnr' | 'ssim' | 'nmse') => {
        const v = es.map((e) => e[k]);
        return figure(mean(v), sampleStd(v), v.length);
      };
      return {
        psnr: over('psnr'),
        ssim: over('ssim'),
        nmse: over('nmse'),
        volumes: Math.min(...es.map((e) => e.volumes)),
        seeds: es.length,
      };
    });
    return cells.some((c) => c !== null) ? [{ model, cells }] : [];
  });
  const kdGain: NonNullable<ResultsTable['kdGain']> = {};
  const paired: NonNullable<ResultsTable['paired']> = {};
  let unitNote: 'volume' | 'slice' = 'volume';
  for (const c of columns) {
    const evals = byAcc.get(Number(c.key)) ?? [];
    const { groups, unit } = pairedGroups(evals, ['teacher', 'student', 'kd']);
    if (groups.length) {
      unitNote = unit;
      const gap = (arms: number[][]) => {
        const [t, s, k] = arms.map(mean);
        return t - s === 0 ? NaN : (k - s) / (t - s);
      };
      const ci = hierarchicalBootstrap(groups, gap);
      const [t, s] = [0, 1].map((arm) => mean(groups.flatMap((g) => g[arm])));
      kdGain[c.key] = { fraction: ci.estimate, low: ci.low, high: ci.high, teacherMinusStudent: t - s };
    }
    paired[c.key] = [compare(evals, 'kd', 'student'), compare(evals, 'kd', 'student-long')].filter(
      (p): p is PairedComparison => p !== null,
    );
  }
  const seeds = [...new Set(members.map((m) => m.seed).filter((s) => s !== null))];
  const volumes = Math.min(...[...byAcc.values()].flatMap((l) => l.map((x) => x.e.volumes)));
  const notes = [
    `validation split only; mean ± std (sample std) over ${seeds.length} seed${seeds.length === 1 ? '' : 's'} of each seed's mean over ${Number.isFinite(volumes) ? volumes : 0} validation volume${volumes === 1 ? '' : 's'}`,
    `KD gain: (KD − student) / (teacher − student) in PSNR; paired differences per seed × ${unitNote}; intervals: 95 % two-stage bootstrap (seeds, then ${unitNote}s within a seed); t-test on the per-seed mean differences`,
  ];
  return {
    kind: 'study',
    id: studyId,
    datasetId: study.datasetId,
    split: 'validation',
    spread: 'std-seeds',
    columns,
    rows,
    kdGain,
    paired,
    notes,
  };
}

// ---------------------------------------------------------------------------------------------------
// Rendering.

const DIGITS = { psnr: 2, ssim: 4, nmse: 5 } as const;
type Metric = keyof typeof DIGITS;

/** "35.12 ± 0.40", or "35.12 (n = 1)" when the spread is unknown. */
export function figureText(f: ResultsFigure, metric: Metric, pm = '±'): string {
  if (!Number.isFinite(f.mean)) return '–';
  const d = DIGITS[metric];
  return Number.isFinite(f.spread)
    ? `${f.mean.toFixed(d)} ${pm} ${f.spread.toFixed(d)}`
    : `${f.mean.toFixed(d)} (n = ${f.n})`;
}

const modelName = (m: string) => MODEL_NAMES[m as TableModel] ?? m;

function grid(t: ResultsTable, pm: string): string[][] {
  const header = [
    'model',
    ...t.columns.flatMap((c) => [`${c.label} PSNR`, `${c.label} SSIM`, `${c.label} NMSE`]),
  ];
  const body = t.rows.map((r) => [
    modelName(r.model),
    ...r.cells.flatMap((c) =>
      c ? (['psnr', 'ssim', 'nmse'] as const).map((k) => figureText(c[k], k, pm)) : ['–', '–', '–'],
    ),
  ]);
  return [header, ...body];
}

function gainLines(t: ResultsTable): string[] {
  const out: string[] = [];
  for (const c of t.columns) {
    const g = t.kdGain?.[c.key];
    // a share of a gap means nothing when there is no gap: say so rather than print "closes −87 %"
    if (g && !(g.teacherMinusStudent > 0))
      out.push(
        `${c.label}: the teacher is not above the student (teacher − student = ${g.teacherMinusStudent.toFixed(3)} dB): there is no gap for KD to close`,
      );
    else if (g)
      out.push(
        `${c.label}: KD closes ${(100 * g.fraction).toFixed(0)} % of the student→teacher gap (95 % interval ${(100 * g.low).toFixed(0)} to ${(100 * g.high).toFixed(0)} %)`,
      );
    for (const p of t.paired?.[c.key] ?? []) {
      out.push(
        `${c.label}: ${p.a} − ${p.b} = ${p.meanDiff.toFixed(3)} dB (95 % interval ${p.low.toFixed(3)} to ${p.high.toFixed(3)}; ` +
          `${p.units} ${p.unit}s over ${p.seeds} seeds, ${p.a} ahead on ${(100 * p.wins).toFixed(0)} %; ` +
          `t(${p.df}) = ${Number.isFinite(p.t) ? p.t.toFixed(2) : '–'}, p = ${Number.isFinite(p.p) ? p.p.toFixed(3) : '–'})`,
      );
    }
  }
  return out;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function latexEscape(s: string): string {
  return s.replace(/([%&#_{}$])/g, '\\$1').replace(/ℓ/g, '$\\ell$');
}

/** A fixed-width text table (first row the header). */
export function textGrid(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The study's figures in the `kdmri study --json` shape. */
export function studyJson(t: ResultsTable) {
  const accOf = (key: string) => Number(key);
  return {
    study: t.id,
    split: t.split,
    rows: t.rows.flatMap((r) =>
      r.cells.flatMap((c, i) =>
        c
          ? [
              {
                acc: accOf(t.columns[i].key),
                model: r.model,
                psnr: { mean: c.psnr.mean, std: c.psnr.spread },
                ssim: { mean: c.ssim.mean, std: c.ssim.spread },
                nmse: { mean: c.nmse.mean, std: c.nmse.spread },
                seeds: c.seeds,
                volumes: c.volumes,
              },
            ]
          : [],
      ),
    ),
    kd_gain: Object.fromEntries(Object.entries(t.kdGain ?? {}).map(([k, g]) => [String(accOf(k)), g])),
    paired: Object.fromEntries(Object.entries(t.paired ?? {}).map(([k, p]) => [String(accOf(k)), p])),
    notes: t.notes,
  };
}

/** Render a table; NaN becomes null in JSON. */
export function renderTable(t: ResultsTable, format: TableFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(t.kind === 'study' ? { ...studyJson(t), table: t } : t, null, 2);
    case 'text':
      return [`${t.kind} ${t.id}`, textGrid(grid(t, '±')), '', ...t.notes, ...gainLines(t)].join('\n');
    case 'csv': {
      const header = [
        'model',
        'column',
        'metric',
        'mean',
        t.spread === 'std-seeds' ? 'std' : 'two_std',
        'n',
        'volumes',
        'seeds',
      ];
      const lines = [header.join(',')];
      for (const r of t.rows)
        r.cells.forEach((c, i) => {
          if (!c) return;
          for (const k of ['psnr', 'ssim', 'nmse'] as const)
            lines.push(
              [r.model, csvField(t.columns[i].label), k, c[k].mean, c[k].spread, c[k].n, c.volumes, c.seeds]
                .map((v) => (typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v))
                .join(','),
            );
        });
      return lines.join('\n');
    }
    case 'markdown': {
      const g = grid(t, '±');
      const md = [
        `| ${g[0].join(' | ')} |`,
        `| ${g[0].map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
        ...g.slice(1).map((r) => `| ${r.join(' | ')} |`),
      ];
      return [...md, '', ...t.notes.map((n) => `- ${n}`), ...gainLines(t).map((n) => `- ${n}`)].join('\n');
    }
    case 'latex': {
      const g = grid(t, '$\\pm$');
      const cols = `l${'r'.repeat(g[0].length - 1)}`;
      return [
        `\\begin{tabular}{${cols}}`,
        '\\hline',
        `${g[0].map(latexEscape).join(' & ')} \\\\`,
        '\\hline',
        ...g
          .slice(1)
          .map(
            (r) =>
              `${r.map((c, i) => (i === 0 ? latexEscape(c) : c.replace(/\(n = (\d+)\)/, '($$n = $1$$)'))).join(' & ')} \\\\`,
          ),
        '\\hline',
        '\\end{tabular}',
        ...t.notes.map((n) => `% ${n}`),
      ].join('\n');
    }
  }
}
