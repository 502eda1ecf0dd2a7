/**
 * Orthanc (Debian's 1.10.1 with its DICOMweb plugin) as a peer of the interop tests: started from
 * a config in a temporary folder, with TCP_NODELAY=1 in its environment (it is built on DCMTK,
 * whose responses otherwise stall 40 ms on delayed ACK), DICOMweb servers it may call as a client,
 * and its REST API on a free port.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Child, freePort } from '../server/helpers.js';

export const ORTHANC = '/usr/sbin/Orthanc';
export const ORTHANC_DICOMWEB = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancPeer {
  readonly rest: string;
  readonly dicomPort: number;
  readonly child: Child;
  /** A REST call; throws with Orthanc's answer on a status >= 400. */
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export async function startOrthancPeer(
  dir: string,
  o: { readonly dicomweb?: Record<string, string> } = {},
): Promise<OrthancPeer> {
  for (const file of [ORTHANC, ORTHANC_DICOMWEB])
    if (!existsSync(file))
      throw new Error(`${file} is missing: install it with apt-get install -y orthanc orthanc-dicomweb`);
  mkdirSync(dir, { recursive: true });
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const config = join(dir, 'orthanc.json');
  writeFileSync(
    config,
    JSON.stringify({
      Name: 'interop',
      StorageDirectory: join(dir, 'storage'),
      IndexDirectory: join(dir, 'index'),
      DicomAet: 'ORTHANC',
      DicomPort: dicomPort,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      Plugins: [ORTHANC_DICOMWEB],
      DicomWeb: {
        Enable: true,
        Root: '/dicom-web/',
        Servers: Object.fromEntries(Object.entries(o.dicomweb ?? {}).map(([name, url]) => [name, [url]])),
      },
    }),
  );
  const child = new Child(
    spawn(ORTHANC, [config], {
      cwd: dir,
      env: { ...process.env, TCP_NODELAY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'Orthanc',
  );
  const rest = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${rest}/system`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (child.process.exitCode !== null || i > 300)
      throw new Error(`Orthanc did not start: ${child.stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    rest,
    dicomPort,
    child,
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const r = await fetch(`${rest}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : body instanceof Uint8Array
            ? { body }
            : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      const text = await r.text();
      if (r.status >= 400) throw new Error(`Orthanc ${method} ${path}: ${r.status} ${text}`);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
    async stop() {
      if (child.process.exitCode === null) {
        child.process.kill('SIGTERM');
        await child.exited;
      }
    },
  };
}
