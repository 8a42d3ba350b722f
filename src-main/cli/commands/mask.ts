/** `kdmri mask`: build an undersampling mask, report its true acceleration, optionally save it as PNG. */
import type { Command } from 'commander';
import { MaskSpecSchema, type MaskSpec } from '../../contract/domain.js';
import { buildMask, maskPlane } from '../../kspace/masks.js';
import { writeGrayPng } from '../../data/png.js';
import { UserError } from '../errors.js';
import { choiceArg, intArg, maskKindArg, numArg, shapeArg } from '../options.js';
import { printJson } from '../output.js';

interface MaskOptions {
  shape: [number, number];
  acc: number;
  kind: Pick<MaskSpec, 'kind' | 'preset' | 'axis'>;
  axis?: 'rows' | 'cols';
  seed: number;
  centerLines?: number;
  centerFraction?: number;
  out?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('mask')
    .description('build a 1-D Cartesian undersampling mask (unshifted: DC at index 0)')
    .requiredOption('--shape <HxW>', 'image shape, rows x columns', shapeArg)
    .option('--acc <n>', 'nominal acceleration', numArg('--acc', 1, 64), 4)
    .option(
      '--kind <kind>',
      'cartesian | random | equispaced | preset:cardiac|brain|knee',
      maskKindArg,
      maskKindArg('cartesian'),
    )
    .option('--axis <axis>', 'sampled lines: rows or cols', choiceArg('--axis', ['rows', 'cols'] as const))
    .option('--seed <n>', 'seed', intArg('--seed', 0, 2 ** 31), 42)
    .option('--center-lines <n>', 'fully sampled centre lines (cartesian)', intArg('--center-lines', 1, 4096))
    .option(
      '--center-fraction <f>',
      'centre fraction (random/equispaced)',
      numArg('--center-fraction', 0, 0.999),
    )
    .option('--out <file.png>', 'write the mask as an 8-bit PNG (white = sampled)')
    .option('--json', 'print the mask description as JSON', false)
    .action((o: MaskOptions) => {
      const parsed = MaskSpecSchema.safeParse({
        ...o.kind,
        axis: o.axis ?? o.kind.axis,
        acc: o.acc,
        seed: o.seed,
        centerLines: o.centerLines,
        centerFraction: o.centerFraction,
      });
      if (!parsed.success) throw new UserError(`invalid mask: ${parsed.error.issues[0].message}`);
      const [h, w] = o.shape;
      let mask;
      try {
        mask = buildMask(parsed.data, h, w);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      if (o.out) {
        if (!/\.png$/i.test(o.out)) throw new UserError(`--out must name a .png file, got '${o.out}'`);
        writeGrayPng(o.out, maskPlane(mask), h, w, [0, 1]);
      }
      const sampled = Array.from(mask.lines).flatMap((v, i) => (v ? [i] : []));
      const info = {
        shape: [h, w],
        axis: mask.axis,
        kind: parsed.data.kind,
        nominalAcceleration: o.acc,
        acceleration: mask.acceleration,
        sampledLines: sampled.length,
        totalLines: mask.lines.length,
        lines: sampled,
        out: o.out ?? null,
      };
      if (o.json) printJson(info);
      else {
        process.stdout.write(
          `${parsed.data.kind} mask ${h}×${w}, ${mask.axis}: ${sampled.length}/${mask.lines.length} lines, ` +
            `true acceleration ${mask.acceleration.toFixed(3)} (nominal ${o.acc})${o.out ? `, written to ${o.out}` : ''}\n`,
        );
      }
    });
}
