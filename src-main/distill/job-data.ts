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
    const slab = ref.slab ?? (typeof ds.meta?.slab === 'number' ? ds.meta.slab : undefined);
    const series = loadSeriesSource(db, ds.source, ds.meta);
    const split = series
      ? splitVolumes(series, size, ds.source, '', slab)
      : loadDataSplit(ds.source === 'sample' ? undefined : ds.source, size, slab);
    return { split, datasetId: ds.id, source: ds.source };
  }
  const split = loadDataSplit(ref.path, ref.size, ref.slab);
  const h = split.train[0].h;
  const w = split.train[0].w;
  const slab = ref.slab ?? null;
  const name = `${split.source === 'sample' ? 'sample' : split.source} ${h}×${w}${slab ? ` slabs of ${slab}` : ''}`;
  const found = db.datasets.findSame({ source: split.source, h, w, task, slab });
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
      meta: { size: ref.size ?? null, slab, description: split.description },
    }).id;
  return { split, datasetId, source: split.source };
}
