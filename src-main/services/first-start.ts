/**
 * First start: when the library has no dataset yet, put the bundled sample in it (as a study when the
 * studies module can import it, and as a dataset), so a new user can distil and compare at once.
 */
import type { Services } from './index.js';

export async function ensureSample(
  services: Services,
  log: (line: string) => void = () => undefined,
): Promise<boolean> {
  const ds = await services.call('listDatasets', {});
  if (!ds.ok) {
    log(`library not ready: ${ds.error.message}`);
    return false;
  }
  if (Array.isArray(ds.value) && ds.value.length > 0) return false;
  const r = await services.call('importSample', {});
  if (!r.ok) {
    log(`could not add the bundled sample: ${r.error.message}`);
    return false;
  }
  log(
    'added the bundled sample to the library (as a dataset, and as a study when the studies library is present)',
  );
  return true;
}
