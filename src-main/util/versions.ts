/** Versions that a reproducibility record names: the app's (package.json) and TensorFlow.js'. */
import { createRequire } from 'node:module';
import { version_core } from '@tensorflow/tfjs-core';

// src-main/util and build/main/util are both two folders below the project (or the packaged app's) root.
const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export const APP_VERSION: string = pkg.version;
export const TFJS_VERSION: string = version_core;
