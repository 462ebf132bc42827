// The controller's end of the xDS Unix domain socket. SDS carries every TLS private key, so only the
// proxy may open it: the socket is made 0600 (connecting needs write permission on the file), in a
// directory only the pod's two containers mount (an emptyDir) or, in local mode, a private 0700 directory.
// Istio's pilot-agent serves Envoy the same way, on ./etc/istio/proxy/XDS.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/** A socket path that cannot be served; `code` is EADDRINUSE when another process serves it. */
export class XdsSocketError extends Error {
  readonly code: string;
  constructor(message: string, code = 'EINVAL') {
    super(message);
    this.code = code;
  }
}

/** Whether a server accepts connections on the socket (a live controller), within a second. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    const done = (live: boolean): void => {
      sock.destroy();
      resolve(live);
    };
    sock.setTimeout(1000, () => done(true));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Makes `path` ready to bind: its directory exists (created 0700 when missing), and a socket left there by
 * an earlier run (a restarted container keeps its emptyDir) is removed, as pilot-agent removes it. A socket
 * another process still serves, or a file that is not a socket, is left alone and reported.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    throw new XdsSocketError(`the xDS socket path ${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have: choose a shorter one`);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new XdsSocketError(`cannot create ${dirname(path)}, the directory of the xDS socket: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) throw new XdsSocketError(`${path} exists and is not a socket: not replacing it with the xDS socket`, 'EEXIST');
  if (await answers(path)) throw new XdsSocketError(`another process serves xDS on ${path}`, 'EADDRINUSE');
  unlinkSync(path);
}

/** Owner-only access to a socket just bound; returns its inode, so close() removes only its own socket. */
export function restrictSocket(path: string): number {
  chmodSync(path, 0o600);
  return lstatSync(path).ino;
}

/** Removes the socket if it is still the one this process bound (not a successor's). */
export function removeSocket(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    // Already gone (the private directory was removed first): nothing to do.
  }
}
