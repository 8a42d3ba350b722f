/**
 * Datasets: what a job trains and evaluates on. Listed, made from library series, made from the
 * bundled sample, and resampled to a training size (a size is its own row, so a job, its runs and
 * its evaluations all name the size they used).
 */
import { ApiFailure, type ApiRequest, type DatasetInfo } from '../contract/api.js';
import type { DatasetRow } from '../store/db.js';
import { createDatasetFromSeries } from '../studies/library.js';
import type { ServiceContext } from './context.js';
import { datasetInfo } from './rows.js';

export function createDatasets(ctx: ServiceContext) {
  const { db, emit } = ctx;

  /** The dataset itself, or its sibling row at size×size (made when missing). */
  function atSize(ds: DatasetRow, size: number | undefined): DatasetRow {
    if (size === undefined || (size === ds.h && size === ds.w)) return ds;
    const found = db.datasets
      .findBySource(ds.source)
      .find((x) => x.task === ds.task && x.h === size && x.w === size);
    if (found) return found;
    const row = db.datasets.create({
      name: `${ds.name.replace(/\s*\d+×\d+$/, '')} ${size}×${size}`,
      source: ds.source,
      task: ds.task,
      h: size,
      w: size,
      trainSlices: ds.trainSlices,
      valSlices: ds.valSlices,
      meta: { ...ds.meta, size, resampledFrom: ds.id },
    });
    emit({ channel: 'library', what: 'datasets' });
    return row;
  }

  /** Make (or find) the dataset built from the bundled sample, with its real shape and split. */
  function sampleDataset(): { dataset: DatasetInfo; created: boolean } {
    const found = db.datasets.findBySource('sample').find((x) => x.task === 'recon');
    if (found) return { dataset: datasetInfo(found), created: false };
    const split = ctx.engine.loadDataSplit(undefined);
    const { h, w } = split.train[0];
    const row = db.datasets.create({
      name: `Bundled sample (Colin27 T1) ${h}×${w}`,
      source: 'sample',
      task: 'recon',
      h,
      w,
      trainSlices: split.train.reduce((n, v) => n + v.slices, 0),
      valSlices: split.val.reduce((n, v) => n + v.slices, 0),
      meta: { size: null, description: split.description },
    });
    emit({ channel: 'library', what: 'datasets' });
    return { dataset: datasetInfo(row), created: true };
  }

  return {
    atSize,
    sampleDataset,
    handlers: {
      async listDatasets(): Promise<DatasetInfo[]> {
        return db.datasets.list().map(datasetInfo);
      },
      async createDatasetFromSeries(req: ApiRequest<'createDatasetFromSeries'>): Promise<DatasetInfo> {
        let row: DatasetRow;
        try {
          row = createDatasetFromSeries(db, req.seriesUids, { name: req.name, size: req.size });
        } catch (e) {
          throw new ApiFailure('bad-request', e instanceof Error ? e.message : String(e), 'seriesUids');
        }
        emit({ channel: 'library', what: 'datasets' });
        return datasetInfo(row);
      },
    },
  };
}
