/**
 * `/__heartbeat__`: named checks an operator's monitoring can alert on before crashes are lost.
 * The storage check makes a real request, cached briefly so frequent probes stay cheap.
 */
import type { Drainer } from './drainer.js';
import type { SpoolReader } from './spool.js';
import type { CrashStorage } from './storage.js';

export interface HealthOptions {
  storageCheckCacheMs: number;
}

interface Check {
  ok: boolean;
  [detail: string]: unknown;
}

export function createHeartbeat(spool: SpoolReader, storage: CrashStorage, drainer: Drainer, options: HealthOptions) {
  let storageCheck: { at: number; result: Promise<Check> } | undefined;

  const checkStorage = (): Promise<Check> => {
    const now = Date.now();
    if (!storageCheck || now - storageCheck.at > options.storageCheckCacheMs) {
      storageCheck = {
        at: now,
        result: storage.checkReachable().then(
          () => ({ ok: true, target: storage.description }),
          (error: Error) => ({ ok: false, target: storage.description, error: error.message }),
        ),
      };
    }
    return storageCheck.result;
  };

  return async (): Promise<{ healthy: boolean; checks: Record<string, Check> }> => {
    const checks: Record<string, Check> = {};
    try {
      const stats = spool.stats();
      checks['spool'] = {
        ok: true,
        pending: stats.pending,
        dead: stats.dead,
        bytes: stats.bytes,
        oldest_age_seconds: stats.oldestReceivedAt === null ? 0 : Math.round((Date.now() - stats.oldestReceivedAt) / 1000),
      };
    } catch (error) {
      checks['spool'] = { ok: false, error: (error as Error).message };
    }
    checks['storage'] = await checkStorage();
    checks['drainer'] = { ok: !drainer.storageDown, uploading: drainer.uploading, uploaded: drainer.uploaded };
    return { healthy: Object.values(checks).every((check) => check.ok), checks };
  };
}
