/**
 * Scratch left by a process killed outright (no exit handler runs) is removed by the next process
 * that makes scratch; a running process's scratch is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

/** Run `code` (ESM, tsx) in a child with TMPDIR = dir; resolves with its stdout when it has ended. */
function child(code: string, dir: string, kill = false): Promise<{ out: string; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: root,
      env: { ...process.env, TMPDIR: dir },
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // the child has made its scratch and printed it: kill it with no chance to clean up
      if (kill && out.includes('\n')) p.kill('SIGKILL');
    });
    p.on('error', reject);
    p.on('exit', (_code, signal) => resolve({ out: out.trim(), signal }));
  });
}

test('a killed process leaves its scratch; the next process that makes scratch removes it, not a live one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scratch-test-'));
  try {
    const make = `import { makeScratchDir } from './src-main/util/scratch.ts';
      import { writeFileSync } from 'node:fs';
      const d = makeScratchDir('kdmri-convert-'); writeFileSync(d + '/library.db', 'x');
      console.log(d); setInterval(() => {}, 1000);`;
    const killed = await child(make, dir, true);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(existsSync(join(killed.out, 'library.db')), 'the killed child left its scratch');
    assert.match(killed.out, new RegExp(`kdmri-convert-\\d+-`));

    // a live process's scratch (this test's pid) and a foreign name stay
    const mine = join(dir, `kdmri-convert-${process.pid}-keep`);
    const other = join(dir, 'kdmri-notes');
    mkdirSync(mine);
    mkdirSync(other);
    writeFileSync(join(dir, `teacher-cache-999999999-x.bin`), 'stale'); // no such pid

    const next = await child(
      `import { makeScratchDir, removeScratchDir } from './src-main/util/scratch.ts';
       const d = makeScratchDir('kdmri-stow-'); removeScratchDir(d); console.log('ok');`,
      dir,
    );
    assert.equal(next.out, 'ok');
    assert.deepEqual(
      readdirSync(dir)
        .filter((n) => !n.startsWith('tsx-')) // tsx's compile cache
        .sort(),
      [`kdmri-convert-${process.pid}-keep`, 'kdmri-notes'],
    );

    // a process that exits normally removes what it did not remove itself
    const normal = await child(
      `import { makeScratchDir } from './src-main/util/scratch.ts'; console.log(makeScratchDir('kdmri-wasm-'));`,
      dir,
    );
    assert.ok(normal.out.includes('kdmri-wasm-'));
    assert.equal(existsSync(normal.out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
