import { availableParallelism } from 'node:os';

/** A mistake in the command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  readonly code = 'MESHGATE_USAGE';
}

/**
 * Something in the environment stops the command from starting (a port another process holds): printed as
 * one line without a stack trace, exit code 1. The message names the flag that changes it.
 */
export class StartupError extends Error {
  readonly code = 'MESHGATE_STARTUP';
}

/** A port or socket the command could not bind, as one line naming the flag that moves it. */
export function bindError(flag: string, what: string, address: string, code: string | undefined): StartupError {
  if (code === 'EADDRINUSE')
    return new StartupError(`${what} ${address} is already in use by another process (another meshgate or Envoy?): stop it, or choose another with ${flag}`);
  return new StartupError(`cannot bind ${what} ${address}${code ? ` (${code})` : ''}: choose another with ${flag}`);
}

export function parsePort(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${flag} must be a port number (0-65535), got '${v}'`);
  return n;
}

/**
 * --concurrency as Istio passes it (`--concurrency=$(ISTIO_CPU_LIMIT)`: whole cores, possibly empty or a
 * fraction): workers serving traffic. Empty or 0 means every CPU the process may use, as Envoy's default:
 * os.availableParallelism() (libuv: the CPU affinity mask and the container's cgroup CPU quota).
 */
export function parseConcurrency(v: string | undefined): number {
  if (v === undefined || v.trim() === '' || Number(v) === 0) return availableParallelism();
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--concurrency must be a number of workers (0 or empty: one per CPU), got '${v}'`);
  return Math.ceil(n);
}

/** `a=b,c=d` -> {a: 'b', c: 'd'} */
export function parseLabels(flag: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--${flag} takes key=value pairs separated by commas, got '${part}'`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
