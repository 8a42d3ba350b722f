/**
 * A fuzzer child process: opens a library (argv[2]) through the services, as `kdmri` does, then for
 * each case imports the file into it and converts the file to NIfTI, both through the service
 * functions the CLI and the app use, and reports verdicts and its peak RSS during the case.
 *
 * Peak RSS per case: Linux's VmHWM is reset by writing 5 to /proc/self/clear_refs before the case and
 * read after it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiFailure } from '../../src-main/contract/api.js';
import { convertFile, isInternalError } from '../../src-main/services/convert.js';
import { createServices } from '../../src-main/services/index.js';
import { judge, type CaseRequest, type ChildMessage, type StageResult } from './protocol.js';

const libDir = process.argv[2];
if (!libDir || !process.send) throw new Error('child.ts: run by fuzz.ts (fork) with a library folder');

let current: number | null = null;
const send = (m: ChildMessage) => process.send?.(m);

// An error thrown past every handler is a crash of the app (the desktop app would die): reported, then
// the child exits so that the parent counts it and starts a fresh one.
const die = (e: unknown) => {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  send({ type: 'uncaught', k: current, message });
  setTimeout(() => process.exit(70), 50);
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);
// the fuzzer went away (killed, interrupted): no orphan keeps working
process.on('disconnect', () => process.exit(0));

function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux or not allowed: VmHWM is then the process's peak so far (an upper bound)
  }
}

function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

const services = createServices({ dbPath: join(libDir, 'library.db'), dataDir: libDir, mode: 'cli' });

const verdictOf = (e: unknown): Omit<StageResult, 'ms'> => {
  const message = e instanceof Error ? e.message : String(e);
  const internal =
    (e instanceof ApiFailure && e.code === 'internal') || isInternalError(e) || !(e instanceof Error);
  const name = e instanceof Error && e.name !== 'Error' && e.name !== 'ApiFailure' ? `${e.name}: ` : '';
  return { verdict: judge(message, internal), message: `${name}${message}` };
};

async function importStage(path: string): Promise<StageResult> {
  const t0 = performance.now();
  try {
    const results = await services.studies.importNow([path]);
    const failed = results.filter((r) => r.status === 'failed');
    const ms = performance.now() - t0;
    if (!failed.length)
      return { verdict: 'ok', message: results.map((r) => `${r.status}: ${r.message}`).join('; '), ms };
    const worst = failed.find((r) => judge(r.message) === 'internal') ?? failed[0];
    return { verdict: judge(worst.message), message: worst.message, ms };
  } catch (e) {
    return { ...verdictOf(e), ms: performance.now() - t0 };
  }
}

function convertStage(path: string, out: string): StageResult {
  const t0 = performance.now();
  try {
    // the first volume of a file holding several: converting it is the work under test
    const s = convertFile(path, out, 0);
    return { verdict: 'ok', message: `${s.slices}×${s.h}×${s.w}`, ms: performance.now() - t0 };
  } catch (e) {
    return { ...verdictOf(e), ms: performance.now() - t0 };
  } finally {
    rmSync(out, { force: true });
  }
}

process.on('message', (m: CaseRequest | { type: 'exit' }) => {
  if (m.type === 'exit') {
    void services.close().then(() => process.exit(0));
    return;
  }
  current = m.k;
  resetPeak();
  send({ type: 'stage', k: m.k, stage: 'import' });
  void importStage(m.path).then((imp) => {
    send({ type: 'stage', k: m.k, stage: 'convert' });
    const conv = convertStage(m.path, m.out);
    send({ type: 'result', k: m.k, import: imp, convert: conv, peakRss: peakRss() });
    current = null;
  });
});
send({ type: 'ready' });
