/** Versions that a reproducibility record names: the app's (package.json) and TensorFlow.js'. */
import { createRequire } from 'node:module';
import { version_core } from '@tensorflow/tfjs-core';

// src-main/util is two folders below the project root, build/main/util (also in the packaged app)
// three: the first package.json on the way up that is ours
function readPackage(): { version: string } {
  const require = createRequire(import.meta.url);
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const p = require(rel) as { name?: string; version: string };
      if (p.name === 'kdmri-workstation') return p;
    } catch {
      // not there: try the next level up
    }
  }
  throw new Error('package.json of kdmri-workstation not found above src-main/util or build/main/util');
}
const pkg = readPackage();

export const APP_VERSION: string = pkg.version;
export const TFJS_VERSION: string = version_core;
