/**
 * The mutation fuzzer: `npm run fuzz -- --cases N --seed S [--from K] [--workers 2] [--timeout 30]`.
 *
 * Case k (from K to K+N−1) is a function of (S, k) alone: its Rng picks a file type, a seed file of
 * that type, and a mutation (mutate.ts), so `--from K --cases 1` replays case K. Each case goes through
 * import (into the child's temporary library) and convert in a child process (child.ts) of a pool of
 * `--workers`; a child that dies is counted as a crash and replaced, one past `--timeout` seconds is
 * killed, counted as a hang and replaced, one past `--max-rss` is killed and counted as a memory
 * failure. Afterwards every library gets `PRAGMA integrity_check`.
 *
 * Output: progress lines, the failures, a table by file type × mutation, the rate, peak RSS; a JSON
 * report (`--json FILE`) with every case. Exit 1 on any crash, hang (HDF5 reader timeouts too), memory failure or integrity
 * failure (internal errors too with --strict); 0 otherwise.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { makeCase, TYPES, type Case } from './cases.js';
import { MUTATIONS } from './mutate.js';
import type { ChildMessage, StageResult } from './protocol.js';
import { loadSeeds } from './seeds.js';

interface Options {
  cases: number;
  seed: number;
  from: number;
  workers: number;
  timeoutS: number;
  maxRssMiB: number;
  json: string | null;
  keep: boolean;
  strict: boolean;
  quiet: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    cases: 100,
    seed: 1,
    from: 0,
    workers: 2,
    timeoutS: 30,
    maxRssMiB: 1536,
    json: null,
    keep: false,
    strict: false,
    quiet: false,
  };
  const int = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer ≥ ${min}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cases') o.cases = int(a, argv[++i], 1);
    else if (a === '--seed') o.seed = int(a, argv[++i], 0);
    else if (a === '--from') o.from = int(a, argv[++i], 0);
    else if (a === '--workers') o.workers = int(a, argv[++i], 1);
    else if (a === '--timeout') o.timeoutS = int(a, argv[++i], 1);
    else if (a === '--max-rss') o.maxRssMiB = int(a, argv[++i], 64);
    else if (a === '--json') o.json = argv[++i] ?? null;
    else if (a === '--keep') o.keep = true;
    else if (a === '--strict') o.strict = true;
    else if (a === '--quiet') o.quiet = true;
    else throw new Error(`unknown argument ${a} (see scripts/fuzz/fuzz.ts)`);
  }
  return o;
}

/**
 * 'h5-timeout': an HDF5 case past the timeout. h5wasm can loop on a corrupt file inside one synchronous
 * WebAssembly call that nothing in its thread can interrupt (the app's cancel then stops its work
 * thread). Kept apart from 'hang' to name where the time went, but a failure like a hang: the loop
 * that seed 1's campaign found (a corrupt global heap, studies/hdf5/gheap.ts) is refused before h5wasm
 * reaches it, so a new one is a reader gap to close.
 */
type Outcome = 'ok' | 'refused' | 'internal' | 'h5-timeout' | 'crash' | 'hang' | 'memory';

interface CaseReport extends Case {
  outcome: Outcome;
  import?: StageResult;
  convert?: StageResult;
  message: string;
  peakRss: number;
  ms: number;
}

function rssOf(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  if (!pid) return 0;
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(st);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface Slot {
  id: number;
  lib: string;
  child: ChildProcess | null;
  ready: Promise<void>;
  stderr: string;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 'kdmri-fuzz-'));
  const casesDir = join(work, 'cases');
  mkdirSync(casesDir);
  const log = (s: string) => {
    if (!o.quiet) process.stdout.write(`${s}\n`);
  };
  const t0 = performance.now();
  const seeds = loadSeeds(join(work, 'seeds'));
  const byType = TYPES.map((t) => `${t} ${seeds.filter((s) => s.type === t).length}`).join(', ');
  log(
    `fuzz: seed ${o.seed}, cases ${o.from}..${o.from + o.cases - 1}, ${o.workers} workers, timeout ${o.timeoutS} s`,
  );
  log(`fuzz: ${seeds.length} seed files (${byType}); work folder ${work}`);
  if (!seeds.some((s) => s.type === 'dicom' && s.name.startsWith('pydicom:')))
    log('fuzz: python3-pydicom not installed: DICOM seeds are the generated and crafted ones only');

  const childPath = new URL('./child-boot.mjs', import.meta.url).pathname;
  const spawn = (slot: Slot) => {
    mkdirSync(slot.lib, { recursive: true });
    const child = fork(childPath, [slot.lib], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, KDMRI_FUZZ_CHILD: '1' },
    });
    slot.child = child;
    slot.stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      slot.stderr = (slot.stderr + d.toString()).slice(-2000);
    });
    slot.ready = new Promise((res, rej) => {
      const onMsg = (m: ChildMessage) => {
        if (m.type === 'ready') {
          child.off('message', onMsg);
          res();
        }
      };
      child.on('message', onMsg);
      child.once('exit', (code) =>
        rej(new Error(`fuzz child exited during start (${code}): ${slot.stderr}`)),
      );
    });
    slot.ready.catch(() => undefined);
  };
  const slots: Slot[] = Array.from({ length: o.workers }, (_, id) => ({
    id,
    lib: join(work, `library-${id}`),
    child: null,
    ready: Promise.resolve(),
    stderr: '',
  }));
  for (const s of slots) spawn(s);

  /** Run one case on a slot; resolves with its report (the slot's child replaced when it had to go). */
  const runCase = async (slot: Slot, c: Case, path: string): Promise<CaseReport> => {
    await slot.ready;
    const child = slot.child as ChildProcess;
    const started = performance.now();
    return new Promise<CaseReport>((resolve) => {
      let peak = 0;
      let finished = false;
      const finish = (r: Omit<CaseReport, keyof Case | 'ms'>, replace: boolean) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearInterval(watch);
        child.off('message', onMsg);
        child.off('exit', onExit);
        if (replace) {
          child.kill('SIGKILL');
          spawn(slot);
        }
        resolve({ ...c, ...r, ms: performance.now() - started });
      };
      let uncaught: string | null = null;
      let stage: string | null = null;
      const onMsg = (m: ChildMessage) => {
        if (m.type === 'uncaught') uncaught = m.message;
        if (m.type === 'stage' && m.k === c.k) stage = m.stage;
        if (m.type !== 'result' || m.k !== c.k) return;
        const worst = [m.import, m.convert].find((x) => x.verdict === 'internal');
        const refused = [m.import, m.convert].find((x) => x.verdict === 'refused');
        finish(
          {
            outcome: worst ? 'internal' : refused ? 'refused' : 'ok',
            import: m.import,
            convert: m.convert,
            message: (worst ?? refused ?? m.convert).message,
            peakRss: Math.max(m.peakRss, peak),
          },
          false,
        );
      };
      const onExit = (code: number | null, signal: string | null) => {
        finish(
          {
            outcome: 'crash',
            message:
              uncaught ??
              `child died (${signal ?? `exit ${code}`}): ${slot.stderr.trim().split('\n').slice(-3).join(' | ')}`,
            peakRss: peak,
          },
          true,
        );
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
      const timer = setTimeout(
        () =>
          finish(
            {
              ...(/\.h5$/i.test(path)
                ? {
                    outcome: 'h5-timeout' as const,
                    message: `HDF5 reader did not return within ${o.timeoutS} s (${stage ?? 'start'}); stopped`,
                  }
                : {
                    outcome: 'hang' as const,
                    message: `no result after ${o.timeoutS} s (${stage ?? 'start'})`,
                  }),
              peakRss: Math.max(peak, rssOf(child.pid, 'VmHWM')),
            },
            true,
          ),
        o.timeoutS * 1000,
      );
      // a guard for the machine, not the measurement: a child far past the limit is stopped
      const watch = setInterval(() => {
        const rss = rssOf(child.pid);
        peak = Math.max(peak, rss);
        if (rss > 2 * o.maxRssMiB * 2 ** 20)
          finish(
            {
              outcome: 'memory',
              message: `resident memory ${(rss / 2 ** 20).toFixed(0)} MiB, stopped`,
              peakRss: rss,
            },
            true,
          );
      }, 100);
      child.send({ type: 'case', k: c.k, path, out: join(work, `out-${slot.id}.nii.gz`) });
    });
  };

  const reports: CaseReport[] = [];
  let next = o.from;
  const end = o.from + o.cases;
  const lastLog = { t: performance.now() };
  const loop = async (slot: Slot) => {
    while (next < end) {
      const k = next++;
      const { c, bytes, ext } = makeCase(seeds, o.seed, k);
      const path = join(casesDir, `case-${k}${ext}`);
      writeFileSync(path, bytes);
      let r = await runCase(slot, c, path);
      if (r.outcome === 'ok' || r.outcome === 'refused') {
        if (r.peakRss > o.maxRssMiB * 2 ** 20)
          r = {
            ...r,
            outcome: 'memory',
            message: `peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MiB over ${o.maxRssMiB} MiB`,
          };
      }
      reports.push(r);
      const bad = r.outcome !== 'ok' && r.outcome !== 'refused';
      if (!bad || !o.keep) rmSync(path, { force: true });
      if (bad)
        log(
          `  case ${k} ${r.outcome.toUpperCase()}: ${c.type} ${c.seed} / ${c.mutation} (${c.detail}): ${r.message}`,
        );
      if (performance.now() - lastLog.t > 10_000) {
        lastLog.t = performance.now();
        const min = (performance.now() - t0) / 60_000;
        log(`fuzz: ${reports.length}/${o.cases} cases, ${(reports.length / min).toFixed(0)} cases/min`);
      }
    }
  };
  await Promise.all(slots.map(loop));
  await Promise.all(
    slots.map(
      (s) =>
        new Promise<void>((res) => {
          const c = s.child;
          if (!c || c.exitCode !== null) return res();
          c.once('exit', () => res());
          c.send({ type: 'exit' });
          setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );

  // the libraries every case was imported into, after crashes and kills
  const integrity: { lib: string; result: string }[] = [];
  for (const s of slots) {
    const db = new Database(join(s.lib, 'library.db'), { readonly: true });
    try {
      const rows = db.pragma('integrity_check') as { integrity_check: string }[];
      const fk = db.pragma('foreign_key_check') as unknown[];
      integrity.push({
        lib: s.lib,
        result:
          rows.map((r) => r.integrity_check).join('; ') +
          (fk.length ? `; ${fk.length} foreign key violations` : ''),
      });
    } finally {
      db.close();
    }
  }

  const seconds = (performance.now() - t0) / 1000;
  reports.sort((a, b) => a.k - b.k);
  const count = (f: (r: CaseReport) => boolean) => reports.filter(f).length;
  const outcomes: Outcome[] = ['ok', 'refused', 'internal', 'h5-timeout', 'crash', 'hang', 'memory'];
  const totals = Object.fromEntries(outcomes.map((x) => [x, count((r) => r.outcome === x)])) as Record<
    Outcome,
    number
  >;
  const peakMax = reports.reduce((m, r) => Math.max(m, r.peakRss), 0);
  const slowest = reports.reduce((m, r) => Math.max(m, r.ms), 0);

  // table: file type × mutation, each cell "cases ok/refused/internal/crash/hang/memory" compressed
  const lines: string[] = [];
  const cols = ['type', 'mutation', 'cases', ...outcomes, 'peak MiB', 'max s'];
  lines.push(cols.join('\t'));
  for (const t of TYPES)
    for (const m of MUTATIONS) {
      const rs = reports.filter((r) => r.type === t && r.mutation === m);
      if (!rs.length) continue;
      lines.push(
        [
          t,
          m,
          rs.length,
          ...outcomes.map((x) => rs.filter((r) => r.outcome === x).length),
          (rs.reduce((a, r) => Math.max(a, r.peakRss), 0) / 2 ** 20).toFixed(0),
          (rs.reduce((a, r) => Math.max(a, r.ms), 0) / 1000).toFixed(1),
        ].join('\t'),
      );
    }
  const table = alignTable(lines);
  const integrityOk = integrity.every((i) => i.result === 'ok');
  process.stdout.write(
    [
      '',
      table,
      '',
      `fuzz: ${reports.length} cases in ${seconds.toFixed(0)} s (${((reports.length / seconds) * 60).toFixed(0)} cases/min), seed ${o.seed}`,
      `fuzz: ${totals.ok} ok, ${totals.refused} refused, ${totals.internal} internal errors, ${totals['h5-timeout']} HDF5 reader timeouts, ${totals.crash} crashes, ${totals.hang} hangs, ${totals.memory} over memory`,
      `fuzz: peak RSS max ${(peakMax / 2 ** 20).toFixed(0)} MiB; slowest case ${(slowest / 1000).toFixed(1)} s`,
      ...integrity.map((i) => `fuzz: integrity_check ${i.lib}: ${i.result}`),
      '',
    ].join('\n'),
  );
  if (o.json)
    writeFileSync(
      o.json,
      JSON.stringify(
        { options: o, seconds, totals, peakRssMax: peakMax, integrity, table: lines, cases: reports },
        null,
        1,
      ),
    );
  if (!o.keep) rmSync(work, { recursive: true, force: true });
  const failed =
    totals.crash + totals.hang + totals['h5-timeout'] + totals.memory > 0 ||
    !integrityOk ||
    (o.strict && totals.internal > 0);
  return failed ? 1 : 0;
}

function alignTable(lines: string[]): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
    .join('\n');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
