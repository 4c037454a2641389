import type { Dump } from './crash.js';
import type { SpooledCrash } from './spool.js';
import type { CrashStorage } from './storage.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from './storage-keys.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The SHA-256 of each dump as received (`metadata.dump_checksums` of the raw crash), by dump name. */
function dumpChecksums(rawCrashJson: string): Map<string, string> {
  const rawCrash = JSON.parse(rawCrashJson) as { metadata?: { dump_checksums?: Record<string, unknown> } };
  // A Map, not an object: dump names such as `__proto__` or `constructor` must not reach Object.prototype.
  const found = new Map<string, string>();
  for (const [name, value] of Object.entries(rawCrash.metadata?.dump_checksums ?? {})) {
    if (typeof value === 'string' && SHA256_HEX.test(value)) found.set(name, value);
  }
  return found;
}

/**
 * Uploads one crash in Antenna's order: dump_names, the dumps, and the raw crash last, so the raw
 * crash's presence in storage means the crash is complete. Resolves once every object is
 * confirmed; a retry after any failure rewrites the same keys with the same bytes (I3).
 */
export async function uploadCrash(storage: CrashStorage, crash: SpooledCrash, dumps: Dump[]): Promise<void> {
  const json = 'application/json';
  const checksums = dumpChecksums(crash.rawCrashJson);
  await storage.put(dumpNamesKey(crash.crashId), Buffer.from(JSON.stringify(crash.dumpNames)), json);
  await Promise.all(
    dumps.map((dump) => storage.put(dumpKey(crash.crashId, dump.name), dump.data, 'application/octet-stream', checksums.get(dump.name))),
  );
  await storage.put(rawCrashKey(crash.crashId), Buffer.from(crash.rawCrashJson), json);
}
