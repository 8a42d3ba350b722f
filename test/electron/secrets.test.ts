// PACS secrets on the desktop: safeStorage (here a stand-in cipher with the same API) encrypts each
// value before it reaches the owner-only file; the file never holds the secret in clear; a Linux
// session without a keyring (safeStorage's 'basic_text', a fixed public key) is refused with the
// reason; the environment overrides the file. Web mode's plain file store: 0600, and removals stick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { desktopSecretStore } from '../../src-main/electron/secrets.js';
import {
  fileSecretStore,
  SAFE_SECRETS_FILE,
  SECRETS_FILE,
  secretEnvName,
} from '../../src-main/services/secrets.js';

/** XOR with a key: enough to tell ciphertext from clear text, with safeStorage's signatures. */
function fakeSafeStorage(backend = 'gnome_libsecret', available = true) {
  const key = 0x5a;
  return {
    isEncryptionAvailable: () => available,
    getSelectedStorageBackend: () => backend,
    encryptString: (s: string) => Buffer.from(Buffer.from(s, 'utf8').map((b) => b ^ key)),
    decryptString: (b: Buffer) => Buffer.from(b.map((x) => x ^ key)).toString('utf8'),
  };
}

test('desktop: secrets are encrypted with safeStorage in an owner-only file; no keyring, no storing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-secrets-'));
  try {
    const store = desktopSecretStore(dir, () => fakeSafeStorage());
    store.set('Lab PACS', 'hunter2-secret');
    const file = join(dir, SAFE_SECRETS_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const raw = readFileSync(file, 'utf8');
    assert.ok(!raw.includes('hunter2-secret'), raw);
    assert.equal(store.get('Lab PACS'), 'hunter2-secret');
    assert.equal(store.place('Lab PACS'), 'safeStorage');
    assert.equal(store.get('other'), null);
    const linux = process.platform === 'linux';
    const noKeyring = desktopSecretStore(dir, () => fakeSafeStorage('basic_text'));
    if (linux) assert.throws(() => noKeyring.set('x', 'y'), /no desktop keyring .*KDMRI_PACS_SECRET_/);
    const unavailable = desktopSecretStore(dir, () => fakeSafeStorage('gnome_libsecret', false));
    assert.throws(() => unavailable.get('Lab PACS'), /desktop keyring is not available/);
    store.remove('Lab PACS');
    assert.equal(store.get('Lab PACS'), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('web mode: plain values in a 0600 file, the environment first', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-secrets-'));
  try {
    assert.equal(secretEnvName('Lab PACS #2'), 'KDMRI_PACS_SECRET_LAB_PACS_2');
    const env: NodeJS.ProcessEnv = {};
    const store = fileSecretStore(join(dir, SECRETS_FILE), { env });
    store.set('Lab PACS #2', 'pw');
    assert.equal(statSync(join(dir, SECRETS_FILE)).mode & 0o777, 0o600);
    assert.equal(store.place('Lab PACS #2'), 'file');
    env.KDMRI_PACS_SECRET_LAB_PACS_2 = 'from-env';
    assert.equal(store.get('Lab PACS #2'), 'from-env');
    assert.equal(store.place('Lab PACS #2'), 'environment');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
