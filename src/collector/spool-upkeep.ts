/**
 * The collector's periodic work on its spool: re-reading the byte count (so space another process
 * freed, `spool-inspect purge`, reopens acceptance without a restart) and expiring the dedup index.
 * Errors go to BackgroundErrors; both run again at their next tick (I11).
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { SpoolRuntime } from '../spool/runtime/runtime.js';
import type { SpoolWriter } from '../spool/runtime/writer.js';

/** How often the spool byte count is re-read from the spool while it is above half its limit. */
const USAGE_RESYNC_MS = 2000;
/** How often expired dedup index entries are removed, and how many per transaction. */
const DEDUP_EXPIRY_INTERVAL_MS = 60_000;
const DEDUP_EXPIRY_BATCH = 5_000;

export function startSpoolUpkeep(config: Config, spool: SpoolRuntime, logger: Logger, errors: BackgroundErrors): { stop(): void } {
  // Only near the limit, where it matters: the read is a pass over every crash row.
  const usageResync = setInterval(
    errors.guard('spool_usage_resync', () => {
      if (spool.usage.bytes > config.spoolMaxBytes / 2) spool.usage.resync(spool.reader.stats().bytes);
    }),
    USAGE_RESYNC_MS,
  );
  usageResync.unref();
  const dedupExpiry = expireDedupIndexPeriodically(spool.writer, config.dedupWindow, logger, errors);
  return {
    stop() {
      clearInterval(usageResync);
      clearInterval(dedupExpiry);
    },
  };
}

/**
 * Keeps the dedup index bounded: entries older than the window (which lookups already ignore) are
 * removed in small batches, so the writer thread never holds one long transaction.
 */
function expireDedupIndexPeriodically(writer: SpoolWriter, windowMs: number, logger: Logger, errors: BackgroundErrors): NodeJS.Timeout {
  let running = false;
  const expire = async () => {
    if (running) return;
    running = true;
    try {
      let removed = 0;
      for (let batch = DEDUP_EXPIRY_BATCH; batch === DEDUP_EXPIRY_BATCH; removed += batch) {
        batch = await writer.expireDedup(Date.now() - windowMs, DEDUP_EXPIRY_BATCH);
      }
      if (removed > 0) logger.debug({ removed }, 'expired dedup index entries removed');
    } catch (error) {
      errors.report('dedup_expiry', error);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void expire(), DEDUP_EXPIRY_INTERVAL_MS);
  timer.unref();
  return timer;
}
