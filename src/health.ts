/**
 * `/__heartbeat__`: named checks an operator's monitoring can alert on before crashes are lost.
 * 200 when all pass, 503 with every check's details otherwise. The storage check makes a real
 * request, cached briefly so frequent probes stay cheap; the spool check makes a real (tiny)
 * durable write, so a full disk shows here before the next crash is refused.
 */
import type { Drainer } from './drainer.js';
import type { SpoolReader, SpoolStats } from './spool.js';
import type { SpoolWriter } from './spool-writer.js';
import { spoolFailureReason } from './spool-errors.js';
import type { CrashStorage } from './storage.js';

export interface HealthOptions {
  storageCheckCacheMs: number;
  maxPending: number;
  maxAgeSeconds: number;
  drainStallSeconds: number;
}

export interface Check {
  ok: boolean;
  [detail: string]: unknown;
}

export interface HeartbeatDeps {
  spool: SpoolReader;
  writer: SpoolWriter;
  storage: CrashStorage;
  drainer: Drainer;
  startedAt: number;
  options: HealthOptions;
}

const ageSeconds = (since: number | null | undefined, now: number) => (since == null ? 0 : Math.round((now - since) / 1000));

export function createHeartbeat({ spool, writer, storage, drainer, startedAt, options }: HeartbeatDeps) {
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

  // Both a probe and the last real commit: a full disk may still take the probe's few bytes
  // while refusing every crash.
  const checkWritable = async (): Promise<Check> => {
    try {
      await writer.probe();
    } catch (error) {
      return { ok: false, reason: spoolFailureReason(error), error: (error as Error).message };
    }
    const failure = writer.lastFailure;
    if (failure) {
      return { ok: false, reason: spoolFailureReason(failure.error), error: failure.error.message, since: new Date(failure.at).toISOString() };
    }
    return { ok: true };
  };

  const spoolChecks = (stats: SpoolStats, now: number): Record<string, Check> => {
    const oldest = ageSeconds(stats.oldestPendingAt, now);
    const lastUpload = drainer.lastSuccessAt ?? startedAt;
    const stalled = stats.pending > 0 && now - lastUpload > options.drainStallSeconds * 1000;
    return {
      spool_depth: { ok: stats.pending <= options.maxPending, pending: stats.pending, dead: stats.dead, bytes: stats.bytes, max_pending: options.maxPending },
      spool_age: { ok: oldest <= options.maxAgeSeconds, oldest_pending_age_seconds: oldest, max_age_seconds: options.maxAgeSeconds },
      drainer: {
        ok: !stalled && !drainer.paused,
        uploading: drainer.uploading,
        concurrency_limit: drainer.concurrencyLimit,
        uploaded: drainer.uploaded,
        paused_after_failure: drainer.paused,
        seconds_since_last_upload: drainer.lastSuccessAt === undefined ? null : ageSeconds(drainer.lastSuccessAt, now),
      },
    };
  };

  return async (): Promise<{ healthy: boolean; checks: Record<string, Check> }> => {
    const now = Date.now();
    const checks: Record<string, Check> = { spool_writable: await checkWritable() };
    try {
      Object.assign(checks, spoolChecks(spool.stats(), now));
    } catch (error) {
      checks['spool_depth'] = { ok: false, error: (error as Error).message };
    }
    checks['storage'] = await checkStorage();
    return { healthy: Object.values(checks).every((check) => check.ok), checks };
  };
}
