#!/usr/bin/env node
// Runs every test file under test/ (recursively) with node's own test runner, TypeScript through tsx.
// Node's closing summary ("ℹ tests N", "ℹ pass N", "ℹ fail N") is what CI reads.
// Usage: npm test [-- FILTER...]  (FILTER: substrings of test file paths)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') return [];
    return statSync(p).isDirectory() ? walk(p) : /\.test\.ts$/.test(name) ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, KDMRI_TEST: '1' } },
);
process.exit(res.status ?? 1);
