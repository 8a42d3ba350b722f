/**
 * Resolve a job's data reference to training and validation volumes and a dataset row, so that every
 * run, model and evaluation of the job points at the same dataset.
 */
import type { Task } from '../contract/domain.js';
import type { Db } from '../store/db.js';
import { loadSeriesSource } from '../studies/index.js';
import { loadDataSplit, splitVolumes, type DataSplit } from './data-source.js';
import type { DataRef } from './protocol.js';

export interface JobData {
  split: DataSplit;
  datasetId: number;
  source: string;
}

/**
 * Dataset sources: 'sample', an absolute file/folder path, or 'series:<SeriesInstanceUID>[,…]' from the
 * studies library. Importing the studies module also registers its DICOM and HDF5 readers for paths.
 */
export function loadJobData(db: Db, ref: DataRef, task: Task): JobData {
  if (ref.kind === 'dataset') {
    const ds = db.datasets.get(ref.datasetId);
    if (!ds) throw new Error(`no dataset ${ref.datasetId} in the library`);
    const size = ref.size ?? (typeof ds.meta?.size === 'number' ? ds.meta.size : undefined);
    const series = loadSeriesSource(db, ds.source);
    const split = series
      ? splitVolumes(series, size, ds.source)
      : loadDataSplit(ds.source === 'sample' ? undefined : ds.source, size);
    return { split, datasetId: ds.id, source: ds.source };
  }
  const split = loadDataSplit(ref.path, ref.size);
  const h = split.train[0].h;
  const w = split.train[0].w;
  const name = `${split.source === 'sample' ? 'sample' : split.source} ${h}×${w}`;
  const found = db.datasets
    .list()
    .find((d) => d.source === split.source && d.h === h && d.w === w && d.task === task);
  const datasetId =
    found?.id ??
    db.datasets.create({
      name,
      source: split.source,
      task,
      h,
      w,
      trainSlices: split.train.reduce((n, v) => n + v.slices, 0),
      valSlices: split.val.reduce((n, v) => n + v.slices, 0),
      meta: { size: ref.size ?? null, description: split.description },
    }).id;
  return { split, datasetId, source: split.source };
}
