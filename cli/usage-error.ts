/** A mistake in the command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  readonly code = 'MESHGATE_USAGE';
}

export function parsePort(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${flag} must be a port number (0-65535), got '${v}'`);
  return n;
}

/** `a=b,c=d` -> {a: 'b', c: 'd'} */
export function parseLabels(flag: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--${flag} takes key=value pairs separated by commas, got '${part}'`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
