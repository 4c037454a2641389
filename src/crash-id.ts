import { randomUUID } from 'node:crypto';

/** Socorro crash IDs: a UUIDv4 whose last 7 hex digits are `<throttle digit><YYMMDD>` (UTC). */
export const CRASH_ID_PATTERN = /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{6}[0-9]{6}$/;

/**
 * Antenna's throttle result: 0 accepted for processing; 1 deferred (stored, not processed by
 * default); 3 fake-accepted (answered, never stored).
 */
export type ThrottleDigit = 0 | 1 | 3;

export function newCrashId(now: Date, throttle: ThrottleDigit = 0): string {
  const uuid = randomUUID();
  const yymmdd =
    String(now.getUTCFullYear() % 100).padStart(2, '0') +
    String(now.getUTCMonth() + 1).padStart(2, '0') +
    String(now.getUTCDate()).padStart(2, '0');
  return `${uuid.slice(0, -7)}${throttle}${yymmdd}`;
}

export function isCrashId(value: string): boolean {
  return CRASH_ID_PATTERN.test(value);
}

/** The `YYYYMMDD` a crash ID carries, as used in the raw crash key. */
export function crashIdDate(crashId: string): string {
  return `20${crashId.slice(-6)}`;
}
