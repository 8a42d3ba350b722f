/**
 * The desktop's PACS secrets: Electron's safeStorage (the OS keyring: Keychain, DPAPI, libsecret or
 * kwallet) encrypts each password or token; the services keep the ciphertext in an owner-only file in
 * the library home (services/secrets.ts). Without a keyring (Linux with no secret service, where
 * safeStorage would fall back to a fixed, public key), storing a secret is refused with the reason
 * rather than pretending to protect it; the environment (KDMRI_PACS_SECRET_<NAME>) still works.
 */
import { join } from 'node:path';
import type * as ElectronNs from 'electron';
import {
  fileSecretStore,
  SAFE_SECRETS_FILE,
  type SecretCodec,
  type SecretStore,
} from '../services/secrets.js';

type SafeStorage = Pick<
  typeof ElectronNs.safeStorage,
  'isEncryptionAvailable' | 'encryptString' | 'decryptString'
> & { getSelectedStorageBackend?: () => string };

export function safeStorageCodec(safeStorage: () => SafeStorage): SecretCodec {
  const usable = (): SafeStorage => {
    const s = safeStorage();
    if (!s.isEncryptionAvailable())
      throw new Error('the desktop keyring is not available, so PACS secrets cannot be stored safely');
    // on Linux 'basic_text' means a hard-coded key: no protection at all
    if (process.platform === 'linux' && s.getSelectedStorageBackend?.() === 'basic_text')
      throw new Error(
        'no desktop keyring (gnome-keyring or kwallet) is running, so PACS secrets cannot be stored safely; ' +
          'set KDMRI_PACS_SECRET_<NODE NAME> in the environment instead',
      );
    return s;
  };
  return {
    place: 'safeStorage',
    encrypt: (secret) => usable().encryptString(secret).toString('base64'),
    decrypt: (stored) => usable().decryptString(Buffer.from(stored, 'base64')),
  };
}

/** The desktop app's secret store: safeStorage-encrypted values in the library home. */
export function desktopSecretStore(dataDir: string, safeStorage: () => SafeStorage): SecretStore {
  return fileSecretStore(join(dataDir, SAFE_SECRETS_FILE), { codec: safeStorageCodec(safeStorage) });
}
