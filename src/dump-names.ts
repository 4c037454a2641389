/**
 * What a dump may be called: the form field name it came in, cleaned by Antenna's rule. Read by the
 * parser (which names each dump), the report identity (Crashpad's main dump) and the key layout.
 */

/** The field of the main minidump (stored under `v1/dump/`). */
export const MAIN_DUMP_FIELD = 'upload_file_minidump';
const RESERVED_DUMP_NAMES = new Set(['raw_crash', 'dump_names', 'processed_crash']);

/** Antenna's rule: keep `[A-Za-z0-9_]`, at most 30 characters. Returns undefined when unusable. */
export function sanitizeDumpName(name: string): string | undefined {
  const clean = name.replace(/[^A-Za-z0-9_]/g, '').slice(0, 30);
  if (clean === '' || RESERVED_DUMP_NAMES.has(clean)) return undefined;
  return clean;
}
