import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON object per line on stdout; `crash_id` is the field name wherever a crash is concerned. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/**
 * Node prints process warnings (a deprecation, MaxListenersExceededWarning, the AWS SDK's notice
 * about the Node version) to stderr as text, which breaks a log pipeline expecting JSON. Its
 * printer is an ordinary 'warning' listener: replaced here by one JSON line at warn level each.
 */
export function logProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    logger.warn({ warning: { name: warning.name, message: warning.message, ...(warning.code ? { code: warning.code } : {}) } }, 'process warning');
  });
}
