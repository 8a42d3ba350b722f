/**
 * Compile-time proof that the engine modules fit the services' ports (type-only: nothing here runs,
 * and no engine module is loaded by importing this file). A signature change in the engine shows up
 * as a type error here instead of a runtime surprise.
 */
import type * as DistillService from '../distill/service.js';
import type * as Infer from '../distill/infer.js';
import type * as SliceBank from '../distill/slice-bank.js';
import type * as DataSource from '../distill/data-source.js';
import type { DistillServiceModule, InferModule, SliceBankModule, DataSourceModule } from './engine.js';

type Fits<A, B> = A extends B ? true : never;

export type PortChecks = [
  Fits<Pick<typeof DistillService, 'startJob'>, DistillServiceModule>,
  Fits<Pick<typeof Infer, 'loadModelDir' | 'reconstructVolume'>, InferModule>,
  Fits<Pick<typeof SliceBank, 'buildSliceBank'>, SliceBankModule>,
  Fits<Pick<typeof DataSource, 'loadDataSplit'>, DataSourceModule>,
];
export const portChecks: PortChecks = [true, true, true, true];
