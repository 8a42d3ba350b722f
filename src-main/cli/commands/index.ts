/**
 * Every `kdmri` command, in help order. Each module exports `register(program)`.
 * Add a command by writing commands/<name>.ts and adding one line here.
 */
import type { Command } from 'commander';
import { register as distill } from './distill.js';
import { register as evaluate } from './eval.js';
import { register as reconstruct } from './reconstruct.js';
import { register as metrics } from './metrics.js';
import { register as runs } from './runs.js';
import { register as table } from './table.js';
import { register as study } from './study.js';
import { register as sweep } from './sweep.js';
import { register as mask } from './mask.js';
import { register as serve } from './serve.js';
import { register as start } from './start.js';
import { register as importCmd } from './import.js';
import { register as studies } from './studies.js';
import { register as convert } from './convert.js';
import { register as exportCmd } from './export.js';
import { register as pacs } from './pacs.js';
import { register as pseudonyms } from './pseudonyms.js';
import { register as deleteCmd } from './delete.js';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  distill,
  evaluate,
  reconstruct,
  metrics,
  runs,
  table,
  study,
  sweep,
  mask,
  serve,
  start,
  importCmd,
  studies,
  convert,
  exportCmd,
  deleteCmd,
  pacs,
  pseudonyms,
];
