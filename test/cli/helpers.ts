/** Run `kdmri` from source as a user would, on a library home of its own. */
import { spawnSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;

export function kdmriIn(home: string, timeout = 300_000) {
  return (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
      cwd: root,
      env: { ...process.env, KDMRI_HOME: home },
      encoding: 'utf8',
      timeout,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
}
