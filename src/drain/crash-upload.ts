import type { Dump } from '../crash.js';
import type { SpooledCrash } from '../spool/schema.js';
import type { CrashStorage } from '../storage/storage.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../storage/storage-keys.js';

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
 * Uploads one crash: dump_names and the dumps side by side, and the raw crash last, once all of
 * them are confirmed, so the raw crash's presence in storage means the crash is complete (what
 * Socorro relies on; one round trip less than Antenna's dump_names-first order). Resolves once every object is
 * confirmed; a retry after any failure rewrites the same keys with the same bytes (I3).
 * `confirmed` holds the keys storage already confirmed for this crash (kept by the caller across
 * retries): they are not sent again, and each newly confirmed key is added.
 */
export async function uploadCrash(storage: CrashStorage, crash: SpooledCrash, dumps: Dump[], confirmed: Set<string> = new Set()): Promise<void> {
  const json = 'application/json';
  const checksums = dumpChecksums(crash.rawCrashJson);
  const put = async (key: string, body: Buffer, contentType: string, sha256?: string) => {
    if (confirmed.has(key)) return;
    await storage.put(key, body, contentType, sha256);
    confirmed.add(key);
  };
  // allSettled: an object that stored is confirmed even when its sibling failed.
  const results = await Promise.allSettled([
    put(dumpNamesKey(crash.crashId), Buffer.from(JSON.stringify(crash.dumpNames)), json),
    ...dumps.map((dump) => put(dumpKey(crash.crashId, dump.name), dump.data, 'application/octet-stream', checksums.get(dump.name))),
  ]);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  await put(rawCrashKey(crash.crashId), Buffer.from(crash.rawCrashJson), json);
}
