/**
 * A real PACS for tests: Debian's Orthanc with the DICOMweb plugin on 127.0.0.1 (a free port), with a
 * temporary configuration and storage and basic authentication on. `skip` names the missing package.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PacsSettings } from '../../src-main/studies/dicomweb.js';

const ORTHANC = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find(existsSync) ?? null;
function pluginPath(): string | null {
  const r = spawnSync('dpkg', ['-L', 'orthanc-dicomweb'], { encoding: 'utf8' });
  const listed =
    r.status === 0
      ? r.stdout.split('\n').find((l) => /libOrthancDicomWeb\.so/.test(l) && existsSync(l))
      : undefined;
  return listed ?? ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'].find(existsSync) ?? null;
}
const PLUGIN = pluginPath();

/** Why Orthanc tests cannot run here, or false. */
export const orthancSkip: string | false = !ORTHANC
  ? 'Orthanc is not installed (apt-get install orthanc)'
  : !PLUGIN
    ? 'orthanc-dicomweb is not installed'
    : false;

export const ORTHANC_USER = 'kdmri';
export const ORTHANC_PASS = 's3cret-pw';

export interface RunningOrthanc {
  /** The temporary folder (configuration, storage); removed by stop(). */
  dir: string;
  port: number;
  settings: PacsSettings;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => res(port));
    });
  });
}

export async function startOrthanc(): Promise<RunningOrthanc> {
  if (orthancSkip) throw new Error(orthancSkip);
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-orthanc-'));
  const port = await freePort();
  const cfg = {
    Name: 'KDMRI-TEST',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    HttpPort: port,
    DicomServerEnabled: false,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [ORTHANC_USER]: ORTHANC_PASS },
    Plugins: [PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(cfg));
  let log = '';
  const proc: ChildProcess = spawn(ORTHANC as string, [join(dir, 'orthanc.json')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const auth = `Basic ${Buffer.from(`${ORTHANC_USER}:${ORTHANC_PASS}`).toString('base64')}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/system`, { headers: { Authorization: auth } });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || proc.exitCode !== null) {
      await stop();
      throw new Error(`Orthanc did not start:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    dir,
    port,
    settings: {
      url: `http://127.0.0.1:${port}/dicom-web`,
      auth: { kind: 'basic', user: ORTHANC_USER, password: ORTHANC_PASS },
    },
    stop,
  };
}
