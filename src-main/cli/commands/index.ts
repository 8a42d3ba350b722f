/**
 * Every `kdmri` command, in help order. Each module exports `register(program)`.
 * Add a command by writing commands/<name>.ts and adding one line here.
 */
import type { Command } from 'commander';
import { register as serve } from './serve.js';
import { register as start } from './start.js';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  serve,
  start,
];
