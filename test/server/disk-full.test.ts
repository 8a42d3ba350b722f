// A full disk during training, for real: the library on a 3 MiB tmpfs (mounted in a private mount
// namespace with util-linux's unshare), a teacher whose second checkpoint does not fit. The job fails
// with a message that says the disk is full and what to do; the database is intact (integrity_check)
// and says the same; with more room, the job resumes from its last checkpoint and finishes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'kdmri-diskfull-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A private mount namespace where this process may mount a tmpfs, or why there is none. */
const probe = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true'], { encoding: 'utf8' });
const skip =
  probe.error || probe.status !== 0
    ? `util-linux unshare cannot make a private mount namespace here (${probe.error?.message ?? probe.stderr.trim()})`
    : false;

test(
  'a full disk fails the job with a clear message, leaves the database intact, and the job resumes',
  { skip },
  () => {
    const home = join(work, 'home');
    const check = join(work, 'check.ts');
    // inside the namespace, after the failure: what the library holds
    writeFileSync(
      check,
      `import { openDatabase } from ${JSON.stringify(join(root, 'src-main/store/db.ts'))};
const db = openDatabase(process.argv[2]);
const integrity = db.sqlite.pragma('integrity_check', { simple: true });
const jobs = db.jobs.list().map((j) => ({ id: j.id, status: j.status, error: j.error }));
const runs = db.runs.list().map((r) => ({ status: r.status, epochsDone: r.epochsDone, error: r.error }));
console.log(JSON.stringify({ integrity, jobs, runs }));
db.close();
`,
    );
    const node = `${process.execPath} --import tsx`;
    const distill = `${node} src-main/cli/entry.ts distill --size 32 --epochs 3 --steps teacher --backend wasm --json`;
    const script = [
      'set -u',
      `mkdir -p ${home}`,
      `mount -t tmpfs -o size=3m tmpfs ${home}`,
      `KDMRI_HOME=${home} ${distill} > ${work}/first.out 2> ${work}/first.err; echo $? > ${work}/first.code`,
      `${node} ${check} ${home}/kdmri.db > ${work}/after-full.json 2>&1`,
      // more room: the same library, the job resumed
      `mount -o remount,size=64m ${home}`,
      `JOB=$(${node} -e "const r=JSON.parse(require('fs').readFileSync('${work}/after-full.json','utf8'));console.log(r.jobs[0].id)")`,
      `KDMRI_HOME=${home} ${node} src-main/cli/entry.ts distill --resume $JOB --backend wasm > ${work}/resume.out 2> ${work}/resume.err; echo $? > ${work}/resume.code`,
      `${node} ${check} ${home}/kdmri.db > ${work}/after-resume.json 2>&1`,
    ].join('\n');
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 1_200_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const read = (f: string) => spawnSync('cat', [join(work, f)], { encoding: 'utf8' }).stdout;

    // the job failed, and says why in one line: the disk is full, free space, resume
    assert.equal(read('first.code').trim(), '1', read('first.err'));
    const err = read('first.err');
    assert.match(
      err,
      /kdmri: no space left on the disk holding \S+checkpoint\.tmp\S*: free some space, then resume/,
    );
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
    const full = JSON.parse(read('after-full.json')) as {
      integrity: string;
      jobs: { id: string; status: string; error: string }[];
      runs: { status: string; epochsDone: number; error: string }[];
    };
    assert.equal(full.integrity, 'ok');
    assert.equal(full.jobs.length, 1);
    assert.equal(full.jobs[0].status, 'failed');
    assert.match(full.jobs[0].error, /no space left on the disk holding/);
    assert.equal(full.runs[0].status, 'failed');
    assert.equal(full.runs[0].epochsDone, 1, 'the first epoch (and its checkpoint) fitted');

    // with room again: resumed from that checkpoint, finished
    assert.equal(read('resume.code').trim(), '0', read('resume.err'));
    assert.match(read('resume.err'), /teacher: 3 epochs, resuming at epoch 2/);
    const done = JSON.parse(read('after-resume.json')) as typeof full;
    assert.equal(done.integrity, 'ok');
    assert.deepEqual(
      done.runs.map((x) => [x.status, x.epochsDone]),
      [['finished', 3]],
    );
  },
);
