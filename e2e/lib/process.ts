// Real processes for black-box tests: spawned in their own process group, output kept for failure
// messages, always stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const MESHGATE = `${REPO}bin/meshgate`;

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** Resolves once a line matching `re` appears in the output. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

export function start(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, MESHGATE_LOG_PRETTY: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  let out = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  const onData = (b: Buffer): void => {
    out += b.toString();
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));
  return {
    child,
    pid,
    exited,
    output: () => out,
    waitForOutput(re, timeoutMs = 15_000) {
      const m = out.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in output of ${cmd} ${args.join(' ')}:\n${out}`)),
          timeoutMs,
        );
        waiters.push({ re, resolve: (s) => (clearTimeout(t), resolve(s)) });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (!running) return exited;
      try {
        process.kill(-pid, signal);
      } catch {
        return exited;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export function meshgate(args: string[], env?: NodeJS.ProcessEnv): Proc {
  return start(MESHGATE, args, env ? { env } : {});
}

/**
 * A TCP port free right now, for a test to bind a moment later. Drawn at random below the kernel's ephemeral
 * range (32768-60999 here), where no `listen(0)` and no outgoing connection of any other process on the machine
 * lands: a port the kernel hands out is free for anyone to take between this check and the test's bind, which
 * under load made suites collide with each other, a quick start or a fuzzer. Checked on every address.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free TCP port found in 20000-31999 after 200 tries');
}

/** Free admin, readiness (status) and metrics ports, and the flags that hand them to `meshgate local` or `meshgate proxy`. */
export async function adminPorts(): Promise<{ admin: number; status: number; metrics: number; flags: string[] }> {
  const [admin, status, metrics] = [await freePort(), await freePort(), await freePort()];
  return { admin, status, metrics, flags: ['--admin-port', String(admin), '--status-port', String(status), '--metrics-port', String(metrics)] };
}

/** Polls `fn` until it returns a value that is not undefined, or fails with the last error. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
