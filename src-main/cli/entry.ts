/** Process entry of `kdmri` (bin/kdmri.js loads the compiled copy; tests run this file through tsx). */
import { runCli } from './main.js';

process.exitCode = await runCli(process.argv.slice(2));
