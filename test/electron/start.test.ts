// `kdmri start` chooses Electron only when the package AND its downloaded binary are present.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findElectronBinary } from '../../src-main/cli/commands/start.js';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('no electron package → web mode', () => {
  assert.equal(findElectronBinary(dir), null);
});

test('electron package without its binary (this machine) → web mode', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  assert.equal(findElectronBinary(root), null);
  const pkg = join(dir, 'node_modules', 'electron');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), '{"name":"electron","version":"45.0.0","main":"index.js"}');
  assert.equal(findElectronBinary(dir), null);
  writeFileSync(join(pkg, 'path.txt'), 'electron');
  assert.equal(findElectronBinary(dir), null, 'path.txt alone is not enough');
});

test('package and binary present → Electron', () => {
  const pkg = join(dir, 'node_modules', 'electron');
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  writeFileSync(join(pkg, 'dist', 'electron'), '');
  assert.equal(findElectronBinary(dir), join(pkg, 'dist', 'electron'));
});
