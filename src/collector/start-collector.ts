/**
 * Wires the collector together, one named step each: the sender policy (before the spool is
 * touched), the spool (lock, connections, writer thread), storage and the drainer with what it
 * yields to, the spool's upkeep, health and the HTTP app, the servers. `shutdown` takes it apart
 * in docs/OPERATIONS.md's order (shutdown.ts). A step that cannot succeed throws CannotStart.
 */
import { statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BackgroundErrors } from '../background-errors.js';
import { CannotStart } from '../cannot-start.js';
import type { Config } from '../config.js';
import { createDrainStage } from '../drain/drain-stage.js';
import { createHeartbeat } from '../health/heartbeat.js';
import { createApp, createMetricsApp } from '../http/app.js';
import type { Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { memoryLimit, SMALLEST_MEMORY_LIMIT } from '../memory-limit.js';
import { RateLimits } from '../policy/rate-limit.js';
import { loadThrottleRules, ThrottleRulesError } from '../policy/throttle-rules-file.js';
import { Throttler } from '../policy/throttler.js';
import { UploadTokens, UploadTokensError } from '../policy/upload-tokens.js';
import { MemoryBudget } from '../report/memory-budget.js';
import { SpoolDirUnusable, SpoolLocked } from '../spool/lock.js';
import type { SpoolReader } from '../spool/runtime/reader.js';
import { SpoolRuntime } from '../spool/runtime/runtime.js';
import { checkIntegrity, SPOOL_FILE, SpoolError } from '../spool/schema.js';
import { createStorage } from '../storage/create-storage.js';
import { createPublisher } from '../queue/create-publisher.js';
import { readVersionInfo } from '../version.js';
import { startLoadSignals } from './load-signals.js';
import { startServers } from './servers.js';
import { shutdownCollector } from './shutdown.js';
import { startSpoolUpkeep } from './spool-upkeep.js';

/** Larger spools skip the start-up integrity check so start-up time does not grow with the spool. */
const STARTUP_INTEGRITY_CHECK_MAX_BYTES = 256 * 1024 * 1024;

export interface RunningCollector {
  address: AddressInfo;
  /** Graceful shutdown; resolves when everything is closed. Safe to call more than once. */
  shutdown(reason: string): Promise<void>;
  /** Re-reads the UPLOAD_TOKENS file (SIGHUP); a bad file keeps the tokens in use, and says why. */
  reloadUploadTokens(): void;
}

export async function startCollector(config: Config, logger: Logger): Promise<RunningCollector> {
  const { throttler, tokens } = loadSenderPolicy(config);
  const metrics = createMetrics();
  metrics.spoolMaxBytes.set(config.spoolMaxBytes);
  const errors = new BackgroundErrors(logger, metrics.backgroundErrors);
  const spool = await openSpool(config, logger, errors);

  const memory = new MemoryBudget(config.inflightMaxBytes);
  const storage = createStorage(config, logger);
  const loadSignals = startLoadSignals(config, memory, spool.usage, errors);
  const publisher = createPublisher(config, logger);
  const drain = await createDrainStage({ config, spool, storage, publisher, logger, metrics, errors, load: loadSignals.load });
  const { drainer } = drain;
  const queue = publisher && drain.announcer ? { publisher, announcer: drain.announcer } : undefined;
  const upkeep = startSpoolUpkeep(config, spool, logger, errors);

  const state = { routable: true, accepting: true };
  const health = createHeartbeat({
    spool: spool.reader,
    writer: spool.writer,
    storage,
    drainer,
    ...(queue ? { queue } : {}),
    startedAt: Date.now(),
    errors,
    options: {
      storageCheckIntervalMs: 5000,
      maxPending: config.healthMaxPending,
      maxAgeSeconds: config.healthMaxAgeSeconds,
      drainStallSeconds: config.healthDrainStallSeconds,
    },
  });
  const refreshGauges = gauges(metrics, spool.reader, memory, health.dependenciesUp, queue?.publisher.description);
  const app = createApp({
    config,
    spool: spool.writer,
    onSpooled: () => drainer.wake(),
    state,
    logger,
    metrics,
    version: readVersionInfo(),
    throttler,
    tokens,
    rateLimits: new RateLimits(),
    heartbeat: health.check,
    memory,
    refreshGauges,
    serveMetrics: config.metricsPort === undefined,
  });
  const servers = await startServers(config, app.fetch, config.metricsPort === undefined ? undefined : createMetricsApp(metrics, refreshGauges).fetch);

  const startStats = spool.reader.stats();
  const limit = memoryLimit();
  if (limit.bytes < SMALLEST_MEMORY_LIMIT) {
    logger.warn({ memory_limit: limit.bytes, smallest: SMALLEST_MEMORY_LIMIT }, 'the memory limit is below what a report at the size limits needs beside the process; such a report may be refused (503) or the process OOM-killed');
  }
  logger.info(
    {
      host: servers.address.address,
      port: servers.address.port,
      metrics_port: servers.metricsPort,
      spool: config.spoolDir,
      durability: config.durability,
      storage: storage.description,
      queue: queue?.publisher.description ?? null,
      memory_limit: limit.bytes,
      memory_limit_source: limit.source,
      inflight_max_bytes: config.inflightMaxBytes,
      drain_inflight_max_bytes: config.drainInflightMaxBytes,
      pending: startStats.pending,
      stored: startStats.stored,
      dead: startStats.dead,
    },
    'collector started',
  );
  drain.start();

  const parts = { config, logger, metrics, state, servers, drain, storage, spool, publisher, stopTasks: () => (loadSignals.stop(), upkeep.stop(), health.stop()) };
  let shuttingDown: Promise<void> | undefined;
  return {
    address: servers.address,
    shutdown: (reason) => (shuttingDown ??= shutdownCollector(parts, reason)),
    reloadUploadTokens: () => reloadUploadTokens(tokens, logger),
  };
}

/** The sender policy files, read before the spool is touched: a bad one stops the start. */
function loadSenderPolicy(config: Config): { throttler: Throttler; tokens: UploadTokens | undefined } {
  try {
    const throttler = new Throttler(loadThrottleRules(config.throttleRules));
    return { throttler, tokens: config.uploadTokens === undefined ? undefined : UploadTokens.load(config.uploadTokens) };
  } catch (error) {
    if (error instanceof ThrottleRulesError) throw new CannotStart('THROTTLE_RULES', error.message);
    if (error instanceof UploadTokensError) throw new CannotStart('UPLOAD_TOKENS', error.message);
    throw error;
  }
}

/** The spool runtime on SPOOL_DIR, created when missing and checked before anything is written. */
async function openSpool(config: Config, logger: Logger, errors: BackgroundErrors): Promise<SpoolRuntime> {
  try {
    return await SpoolRuntime.open({
      dir: config.spoolDir,
      durability: config.durability,
      maxBytes: config.spoolMaxBytes,
      minFreeBytes: config.spoolMinFreeBytes,
      checkpointBytes: config.spoolCheckpointBytes,
      create: true,
      check: (reader) => checkSpoolAtStart(config, reader, logger),
      onFatal: (error) => {
        logger.fatal({ err: error }, 'the spool writer thread died; exiting (everything acknowledged is in the spool)');
        process.exit(1);
      },
      errors,
    });
  } catch (error) {
    if (error instanceof SpoolLocked || error instanceof SpoolDirUnusable || error instanceof SpoolError) throw new CannotStart('SPOOL_DIR', error.message);
    throw error;
  }
}

function checkSpoolAtStart(config: Config, reader: SpoolReader, logger: Logger): void {
  const file = join(config.spoolDir, SPOOL_FILE);
  if (statSync(file).size > STARTUP_INTEGRITY_CHECK_MAX_BYTES) {
    logger.info({ file }, 'spool is large: integrity check skipped at start (run scripts/spool-inspect summary)');
    return;
  }
  const findings = checkIntegrity(reader.db);
  if (findings.length !== 1 || findings[0] !== 'ok') {
    throw new SpoolError(
      `spool ${file} failed its integrity check: ${findings.slice(0, 5).join('; ')}. Move ${config.spoolDir} aside ` +
        '(keep it for recovery with scripts/spool-inspect) and start with an empty spool directory.',
    );
  }
}

/** Brings the gauges up to date; run before each scrape. */
function gauges(
  metrics: Metrics,
  reader: SpoolReader,
  memory: MemoryBudget,
  dependenciesUp: () => { storage: boolean; queue?: boolean },
  queueDescription: string | undefined,
): () => void {
  return () => {
    const up = dependenciesUp();
    metrics.storageUp.set(up.storage ? 1 : 0);
    if (up.queue !== undefined && queueDescription) metrics.queueUp.set({ queue: queueDescription }, up.queue ? 1 : 0);
    const stats = reader.stats();
    metrics.spoolCrashes.set({ state: 'pending' }, stats.pending);
    metrics.spoolCrashes.set({ state: 'stored' }, stats.stored);
    metrics.spoolCrashes.set({ state: 'dead' }, stats.dead);
    metrics.publishOldestAgeSeconds.set(stats.oldestStoredAt === null ? 0 : (Date.now() - stats.oldestStoredAt) / 1000);
    metrics.spoolBytes.set(stats.bytes);
    metrics.spoolOldestAgeSeconds.set(stats.oldestPendingAt === null ? 0 : (Date.now() - stats.oldestPendingAt) / 1000);
    metrics.inflightBytes.set(memory.inUse);
  };
}

function reloadUploadTokens(tokens: UploadTokens | undefined, logger: Logger): void {
  if (!tokens) {
    logger.info('SIGHUP: no UPLOAD_TOKENS file to re-read');
    return;
  }
  try {
    tokens.reload();
    logger.info({ file: tokens.file, tokens: tokens.size }, 'upload tokens re-read');
  } catch (error) {
    logger.error({ file: tokens.file, reason: (error as Error).message, tokens: tokens.size }, 'upload tokens file not usable; the tokens read before stay in use');
  }
}
