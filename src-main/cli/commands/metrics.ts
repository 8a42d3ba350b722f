/** `kdmri metrics`: PSNR / SSIM / NMSE of a prediction volume against a target volume (method spec §5). */
import type { Command } from 'commander';
import { readNifti } from '../../data/nifti.js';
import { volumeMetrics } from '../../metrics/index.js';
import { UserError } from '../errors.js';
import { printJson, table } from '../output.js';

export function register(program: Command): void {
  program
    .command('metrics')
    .description('PSNR, SSIM and NMSE of --pred against --target (data range = target volume maximum)')
    .requiredOption('--target <file>', 'target NIfTI volume')
    .requiredOption('--pred <file>', 'predicted NIfTI volume')
    .option('--json', 'print {"psnr","ssim","nmse"}', false)
    .action((o: { target: string; pred: string; json: boolean }) => {
      const read = (p: string) => {
        try {
          return readNifti(p);
        } catch (e) {
          throw new UserError((e as Error).message);
        }
      };
      const gt = read(o.target);
      const pred = read(o.pred);
      if (gt.slices !== pred.slices || gt.h !== pred.h || gt.w !== pred.w) {
        throw new UserError(
          `shapes differ: target ${gt.slices}×${gt.h}×${gt.w}, prediction ${pred.slices}×${pred.h}×${pred.w} (slices×rows×columns)`,
        );
      }
      const m = volumeMetrics(gt, pred);
      if (o.json) printJson(m);
      else
        process.stdout.write(
          `${table([
            ['PSNR (dB)', 'SSIM', 'NMSE'],
            [m.psnr.toFixed(4), m.ssim.toFixed(6), m.nmse.toExponential(6)],
          ])}\n`,
        );
    });
}
