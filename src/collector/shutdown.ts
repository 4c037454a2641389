/**
 * The collector's graceful shutdown, in the order docs/OPERATIONS.md's "Shutdown and restart" gives:
 * the load balancer's heartbeat turns 503 → (LB grace) → no new connections, requests in flight
 * finished → the drainer uploads (and the announcer announces) until the spool is empty or the deadline → the spool is
 * checkpointed and closed. Whatever is not uploaded by then stays in the spool for the next start.
 */
import type { Config } from '../config.js';
import type { DrainStage } from '../drain/drain-stage.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { SpoolRuntime } from '../spool/runtime/runtime.js';
import type { CrashStorage } from '../storage/storage.js';
import type { CrashPublisher } from '../queue/publisher.js';
import { within } from '../within.js';
import type { Servers } from './servers.js';

export interface CollectorParts {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** What the HTTP app answers from: `routable` (lbheartbeat) and `accepting` (submit). */
  state: { routable: boolean; accepting: boolean };
  servers: Servers;
  drain: DrainStage;
  storage: CrashStorage;
  spool: SpoolRuntime;
  /** The processing queue, when PUBLISH_URL is set. */
  publisher: CrashPublisher | undefined;
  /** Stops the periodic work (load signals, spool upkeep). */
  stopTasks(): void;
}

/** A publisher's close may run this far past the deadline (it cuts its own connections within ~2 s). */
const PUBLISHER_CLOSE_GRACE_MS = 2000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function shutdownCollector(parts: CollectorParts, reason: string): Promise<void> {
  const { config, logger, drain, spool } = parts;
  const { drainer, announcer } = drain;
  const started = Date.now();
  const deadline = started + config.shutdownDeadlineSeconds * 1000;
  const uploadedBefore = drainer.uploaded;
  const publishedBefore = announcer?.published ?? 0;

  parts.state.routable = false;
  logger.info({ reason, spooled: spool.reader.stats().pending }, 'shutdown: load balancer health now 503');
  await sleep(Math.min(deadline, started + config.shutdownLbGraceSeconds * 1000) - Date.now());

  await finishRequestsInFlight(parts, deadline);

  logger.info({ pending: spool.reader.stats().pending }, 'shutdown: draining the spool until empty or deadline');
  if (drainer.paused) {
    // Otherwise the wait until the deadline looks like a hang.
    logger.warn({ deadline_in_ms: Math.max(0, deadline - Date.now()) }, 'shutdown: storage is down, so the spool cannot empty; waiting until the deadline, the rest is uploaded after the next start');
  }
  const emptied = await drain.untilEmpty(deadline);
  drain.stop();
  parts.stopTasks();
  // Uploads and publishes still in flight are cut now, at the deadline; their crashes stay in the spool.
  parts.storage.destroy();
  // Closing races the deadline too: a broker that stops answering must not hold the exit (or the spool's lock).
  if (parts.publisher && (await within(parts.publisher.close(), Math.max(deadline - Date.now(), 0) + PUBLISHER_CLOSE_GRACE_MS)) === 'timeout') {
    logger.warn({ queue: parts.publisher.description }, 'shutdown: the queue connection did not close in time; left behind');
  }
  parts.state.accepting = false;

  const left = spool.reader.stats();
  if (announcer) parts.metrics.shutdownDrain.inc({ result: 'published' }, announcer.published - publishedBefore);
  const uploaded = drainer.uploaded - uploadedBefore;
  parts.metrics.shutdownDrain.inc({ result: 'uploaded' }, uploaded);
  parts.metrics.shutdownDrain.inc({ result: 'left' }, left.pending + left.stored);
  parts.servers.metricsServer?.close();
  parts.servers.metricsServer?.closeAllConnections();
  await spool.close();
  logger.info(
    { uploaded, left_pending: left.pending, left_stored: left.stored, left_dead: left.dead, emptied, ms: Date.now() - started },
    emptied ? 'shutdown complete: spool empty' : 'shutdown complete: deadline reached; the rest is drained on next start',
  );
}

/** No new connections; the requests in flight are answered (spooled or refused) until the deadline, then cut. */
async function finishRequestsInFlight({ servers: { server }, logger }: CollectorParts, deadline: number): Promise<void> {
  const requestsFinished = new Promise<boolean>((resolve) => server.close(() => resolve(true)));
  const idleCloser = setInterval(() => server.closeIdleConnections(), 100);
  server.closeIdleConnections();
  logger.info('shutdown: no new connections; finishing requests in flight');
  const finished = await Promise.race([requestsFinished, sleep(deadline - Date.now()).then(() => false)]);
  clearInterval(idleCloser);
  if (!finished) {
    logger.warn('shutdown: deadline reached with requests in flight; closing their connections (not acknowledged)');
    server.closeAllConnections();
  }
}
