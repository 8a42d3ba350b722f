/**
 * `kdmri`: the headless face of the workstation. Every command drives the same services the desktop
 * app uses. Commands live one per file in ./commands and register themselves on the program.
 *
 * Output: human-readable on a terminal; `--json` prints exactly one JSON document on stdout.
 * Errors: one line on stderr, non-zero exit, never a stack trace (set KDMRI_DEBUG=1 to see one).
 */
import { Command, CommanderError } from 'commander';
import { ApiFailure } from '../contract/api.js';
import { UserError } from './errors.js';
import { COMMANDS } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('kdmri')
    .description('KD-MRI Workstation: distil compact MRI reconstruction networks and compare them')
    .version('0.1.0')
    // options after a subcommand's name are that subcommand's (`kdmri sweep status ID --json`)
    .enablePositionalOptions()
    .showHelpAfterError('(run kdmri --help for usage)')
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its own message (unknown option, missing argument, --help).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`kdmri: ${err.message}\n`);
      return err.exitCode;
    }
    // the services' refusals are the user's to fix: a bad argument or unknown id (2), a conflict (1)
    if (err instanceof ApiFailure && err.code !== 'internal') {
      process.stderr.write(`kdmri: ${err.message}\n`);
      return err.code === 'conflict' ? 1 : 2;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`kdmri: internal error: ${e.message}\n`);
    if (process.env.KDMRI_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
