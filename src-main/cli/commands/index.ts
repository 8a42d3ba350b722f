/**
 * Every `kdmri` command, in help order. Each module exports `register(program)`.
 * Add a command by writing commands/<name>.ts and adding one line here.
 */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [];
