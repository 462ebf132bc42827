// The one process-wide pino logger; components get child loggers ({component: 'xds'}) from their caller.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.MESHGATE_LOG_LEVEL ?? 'info';
  const pretty = process.env.MESHGATE_LOG_PRETTY === '1' || (process.stdout.isTTY && process.env.MESHGATE_LOG_PRETTY !== '0');
  return pino({
    level,
    base: opts.name ? { name: opts.name } : null,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

/** A logger that drops everything: for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
