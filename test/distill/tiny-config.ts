/**
 * The method's protocol with tiny DC-CNNs and one epoch per step (recon, Cartesian 4×): seconds per
 * job on the bundled sample at 16×16, for tests that run whole jobs and studies.
 */
import { defaultDistillConfig, type DistillConfig } from '../../src-main/contract/domain.js';

export function tinyReconConfig(): DistillConfig {
  const c = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
  });
  return {
    ...c,
    teacher: { arch: 'dccnn', nc: 2, nd: 3, nf: 8, residual: false, dcLambda: null, atLayer: 3 },
    student: { arch: 'dccnn', nc: 2, nd: 2, nf: 4, residual: false, dcLambda: null, atLayer: 2 },
    training: { ...c.training, epochs: 1, batchSize: 8 },
  };
}
