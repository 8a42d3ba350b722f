/** Store rows → API shapes. */
import type { DatasetInfo } from '../contract/api.js';
import type { DatasetRow } from '../store/db.js';

export function datasetInfo(d: DatasetRow): DatasetInfo {
  return {
    id: d.id,
    name: d.name,
    source: d.source,
    task: d.task,
    h: d.h,
    w: d.w,
    trainSlices: d.trainSlices,
    valSlices: d.valSlices,
    createdAt: new Date(d.createdAt).toISOString(),
  };
}
