// electron-builder.yml against electron-builder's own loader and JSON schema (app-builder-lib's
// scheme.json), plus the choices the product depends on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

interface BuilderConfig {
  appId?: string;
  productName?: string;
  directories?: { buildResources?: string };
  files?: { filter?: string[] }[];
  asarUnpack?: string[];
  extraResources?: { from?: string; to?: string }[];
  npmRebuild?: boolean;
  linux?: { target?: (string | { target: string })[]; category?: string; icon?: string };
  win?: { target?: (string | { target: string })[] };
  nsis?: { oneClick?: boolean; allowToChangeInstallationDirectory?: boolean };
}
type ConfigModule = {
  getConfig(projectDir: string, configPath: string | null, fromOptions: null): Promise<BuilderConfig>;
  validateConfiguration(config: BuilderConfig, logger: { isEnabled: boolean; add(): void }): Promise<void>;
};

test("electron-builder.yml passes electron-builder's own schema validation", async () => {
  assert.ok(existsSync(require.resolve('app-builder-lib/scheme.json')), 'app-builder-lib/scheme.json exists');
  const cfg = require('app-builder-lib/out/util/config/config.js') as ConfigModule;
  const config = await cfg.getConfig(root, `${root}/electron-builder.yml`, null);
  await cfg.validateConfiguration(config, { isEnabled: false, add() {} });

  // and the validator does reject a bad file (so the pass above means something)
  await assert.rejects(
    cfg.validateConfiguration(
      { ...config, linux: { ...config.linux, categry: 'x' } as BuilderConfig['linux'] },
      { isEnabled: false, add() {} },
    ),
  );

  assert.equal(config.appId, 'org.kdmri.workstation');
  assert.equal(config.productName, 'KD-MRI Workstation');
  const names = (t: (string | { target: string })[] | undefined) =>
    (t ?? []).map((x) => (typeof x === 'string' ? x : x.target));
  assert.deepEqual(names(config.linux?.target), ['deb', 'AppImage'], 'deb is the primary Linux target');
  assert.equal(config.linux?.category, 'Science');
  assert.deepEqual(names(config.win?.target), ['nsis']);
  assert.equal(config.nsis?.oneClick, false);
  assert.equal(config.nsis?.allowToChangeInstallationDirectory, true);
  assert.equal(config.npmRebuild, true);
  for (const p of ['**/*.node', 'node_modules/better-sqlite3/**', '**/*.wasm'])
    assert.ok(config.asarUnpack?.includes(p), p);
  assert.notEqual(
    config.directories?.buildResources ?? 'build',
    'build',
    'build/ holds compiled code and must be packed',
  );
  assert.ok(config.extraResources?.some((r) => r.to === 'sample'));
});

test('icons exist at 512 and 256 px', () => {
  for (const n of [512, 256]) {
    const png = PNG.sync.read(readFileSync(`${root}/resources/icons/${n}x${n}.png`));
    assert.equal(png.width, n);
    assert.equal(png.height, n);
  }
});
