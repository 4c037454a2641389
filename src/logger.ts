import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON object per line on stdout; `crash_id` is the field name wherever a crash is concerned. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
