import type { Dump } from './crash.js';
import type { SpooledCrash } from './spool.js';
import type { CrashStorage } from './storage.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from './storage-keys.js';

/**
 * Uploads one crash in Antenna's order: dump_names, the dumps, and the raw crash last, so the raw
 * crash's presence in storage means the crash is complete. Resolves once every object is
 * confirmed; a retry after any failure rewrites the same keys with the same bytes (I3).
 */
export async function uploadCrash(storage: CrashStorage, crash: SpooledCrash, dumps: Dump[]): Promise<void> {
  const json = 'application/json';
  await storage.put(dumpNamesKey(crash.crashId), Buffer.from(JSON.stringify(crash.dumpNames)), json);
  await Promise.all(
    dumps.map((dump) => storage.put(dumpKey(crash.crashId, dump.name), dump.data, 'application/octet-stream')),
  );
  await storage.put(rawCrashKey(crash.crashId), Buffer.from(crash.rawCrashJson), json);
}
