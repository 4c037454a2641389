/**
 * Wires the collector together: spool lock, spool connections, storage, drainer, HTTP server —
 * and takes it apart again in the documented shutdown order (README: Shutdown and restart):
 * lbheartbeat 503 → (LB grace) → stop accepting connections → finish in-flight requests →
 * drain until the spool is empty or the deadline → checkpoint and close the spool → exit.
 * Whatever is not uploaded by the deadline stays in the spool for the next start.
 */
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createApp, createMetricsApp } from './http/app.js';
import type { Config } from './config.js';
import { Drainer } from './drain/drainer.js';
import { UPLOAD_SHARE_DEFAULTS, UploadShare } from './drain/upload-share.js';
import { MachineCpu } from './drain/machine-cpu.js';
import { closeIdleConnectionsAfterIo } from './http/idle-connections.js';
import { answerInFlightBeforeClientErrors } from './http/client-errors.js';
import { createHeartbeat } from './ops/health.js';
import type { Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { BackgroundErrors } from './background-errors.js';
import { createStorage } from './storage/create-storage.js';
import {
  checkIntegrity,
  closeSpoolDatabase,
  openSpoolDatabase,
  SPOOL_FILE,
  SpoolError,
  SpoolReader,
  SpoolUsage,
} from './spool/spool.js';
import { SpoolWriter } from './spool/spool-writer.js';
import { MemoryBudget } from './http/memory-budget.js';
import { lockSpool, SpoolDirUnusable, SpoolLocked, type SpoolLock } from './spool/spool-lock.js';
import { CannotStart } from './cannot-start.js';
import type Database from 'better-sqlite3';
import type { CrashStorage } from './storage/storage.js';
import { readVersionInfo } from './version.js';
import { loadThrottleRules, ThrottleRulesError } from './http/throttle-rules-file.js';
import { Throttler } from './http/throttler.js';
import { UploadTokens, UploadTokensError } from './http/upload-tokens.js';
import { RateLimits } from './http/rate-limit.js';

/** Larger spools skip the start-up integrity check so start-up time does not grow with the spool. */
const STARTUP_INTEGRITY_CHECK_MAX_BYTES = 256 * 1024 * 1024;
/** After the last report ended, how long the drainer still counts as yielding to receiving. */
const RECEIVING_HOLD_MS = 1000;
/** How often the uploads allowed while receiving follow the event loop's utilization. */
const UPLOAD_SHARE_TICK_MS = 250;
/** How often expired dedup index entries are removed, and how many per transaction. */
const DEDUP_EXPIRY_INTERVAL_MS = 60_000;
const DEDUP_EXPIRY_BATCH = 5_000;
/** How often the spool byte count is re-read from the spool while it is above half its limit. */
const USAGE_RESYNC_MS = 2000;

export interface RunningCollector {
  address: AddressInfo;
  /** Graceful shutdown; resolves when everything is closed. Safe to call more than once. */
  shutdown(reason: string): Promise<void>;
  /** Re-reads the UPLOAD_TOKENS file (SIGHUP); a bad file keeps the tokens in use, and says why. */
  reloadUploadTokens(): void;
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

/** Locks the spool directory (I5) and opens the drainer's reading connection, checking the spool. */
function openSpool(config: Config, logger: Logger): { lock: SpoolLock; drainerDb: Database.Database; reader: SpoolReader } {
  let lock: SpoolLock | undefined;
  try {
    lock = lockSpool(config.spoolDir);
    // The drainer's connection only reads; all writes go through the writer thread.
    const drainerDb = openSpoolDatabase(config.spoolDir, { durability: config.durability, create: true });
    const reader = new SpoolReader(drainerDb);
    checkSpoolAtStart(config, reader, logger);
    return { lock, drainerDb, reader };
  } catch (error) {
    lock?.release();
    if (error instanceof SpoolLocked || error instanceof SpoolDirUnusable || error instanceof SpoolError) throw new CannotStart('SPOOL_DIR', error.message);
    throw error;
  }
}

export async function startCollector(config: Config, logger: Logger): Promise<RunningCollector> {
  const { throttler, tokens } = loadSenderPolicy(config);
  const { lock, drainerDb, reader } = openSpool(config, logger);
  const usage = new SpoolUsage(reader.stats().bytes, {
    dir: config.spoolDir,
    maxBytes: config.spoolMaxBytes,
    minFreeBytes: config.spoolMinFreeBytes,
  });
  const metrics = createMetrics();
  const errors = new BackgroundErrors(logger, metrics.backgroundErrors);
  const writer = await SpoolWriter.start({
    dir: config.spoolDir,
    durability: config.durability,
    usage,
    reusableBytes: () => reader.reusableBytes(),
    onFatal: (error) => {
      logger.fatal({ err: error }, 'the spool writer thread died; exiting (everything acknowledged is in the spool)');
      process.exit(1);
    },
    checkpoints: { everyBytes: config.spoolCheckpointBytes, eagerBelowFreeBytes: config.spoolMinFreeBytes + 4 * config.spoolCheckpointBytes },
    errors,
  });

  const memory = new MemoryBudget(config.inflightMaxBytes);
  const storage = createStorage(config, logger);
  metrics.spoolMaxBytes.set(config.spoolMaxBytes);
  const receiving = () => memory.requestsInFlight > 0 || Date.now() - memory.lastRequestEndedAt < RECEIVING_HOLD_MS;
  const concurrencyWhileReceiving = Math.min(config.drainConcurrencyWhileReceiving, config.drainConcurrency);
  const uploadShare = new UploadShare({ min: concurrencyWhileReceiving, max: config.drainConcurrency, ...UPLOAD_SHARE_DEFAULTS });
  let loopUse = performance.eventLoopUtilization();
  const machineCpu = new MachineCpu();
  const uploadShareTicker = setInterval(
    errors.guard('upload_share', () => {
      const tick = performance.eventLoopUtilization(loopUse);
      loopUse = performance.eventLoopUtilization();
      const machineBusy = machineCpu.busyShare();
      if (receiving()) uploadShare.observe(tick.utilization, machineBusy);
      else uploadShare.reset();
    }),
    UPLOAD_SHARE_TICK_MS,
  );
  uploadShareTicker.unref();
  const drainer = new Drainer(
    reader,
    writer,
    storage,
    {
      concurrency: config.drainConcurrency,
      maxInflightBytes: config.drainInflightMaxBytes,
      concurrencyWhileReceiving,
      yieldMaxMs: config.drainYieldMaxSeconds * 1000,
      retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
      maxAttempts: config.maxAttempts,
    },
    logger,
    metrics,
    {
      // Gaps between reports do not count as idle: a drainer that sprang to full concurrency in
      // every gap would make the next reports wait.
      receiving,
      uploadsWhileReceiving: () => uploadShare.limit,
      uploadsPaced: () => uploadShare.paced,
      spoolFillingUp: () => usage.bytes > config.spoolMaxBytes / 2,
    },
  );
  // The byte count follows the collector's own appends and deletes; re-read it now and then so space
  // freed by another process (spool-inspect purge) reopens acceptance without a restart. Only
  // near the limit, where it matters: the read is a pass over every crash row.
  const usageResync = setInterval(
    errors.guard('spool_usage_resync', () => {
      if (usage.bytes > config.spoolMaxBytes / 2) usage.resync(reader.stats().bytes);
    }),
    USAGE_RESYNC_MS,
  );
  usageResync.unref();
  const dedupExpiry = expireDedupIndexPeriodically(writer, config.dedupWindow, logger, errors);
  const state = { routable: true, accepting: true };
  const heartbeat = createHeartbeat({
    spool: reader,
    writer,
    storage,
    drainer,
    startedAt: Date.now(),
    options: {
      storageCheckIntervalMs: 5000,
      maxPending: config.healthMaxPending,
      maxAgeSeconds: config.healthMaxAgeSeconds,
      drainStallSeconds: config.healthDrainStallSeconds,
    },
  });
  const refreshGauges = () => {
    const stats = reader.stats();
    metrics.spoolCrashes.set({ state: 'pending' }, stats.pending);
    metrics.spoolCrashes.set({ state: 'dead' }, stats.dead);
    metrics.spoolBytes.set(stats.bytes);
    metrics.spoolOldestAgeSeconds.set(stats.oldestPendingAt === null ? 0 : (Date.now() - stats.oldestPendingAt) / 1000);
    metrics.inflightBytes.set(memory.inUse);
  };
  const app = createApp({
    config,
    spool: writer,
    onSpooled: () => drainer.wake(),
    state,
    logger,
    metrics,
    version: readVersionInfo(),
    throttler,
    tokens,
    rateLimits: new RateLimits(),
    heartbeat,
    memory,
    refreshGauges,
    serveMetrics: config.metricsPort === undefined,
  });

  const server = createAdaptorServer({
    fetch: app.fetch,
    // Load-balancer checks (HAProxy's default is HTTP/1.0 without Host) and old clients send no
    // Host header: answered normally, with this name in the request URL.
    hostname: 'localhost',
    serverOptions: {
      requireHostHeader: false,
      headersTimeout: config.headersTimeoutSeconds * 1000,
      requestTimeout: config.requestTimeoutSeconds * 1000,
      keepAliveTimeout: 5_000,
      // How often Node checks the two timeouts above (default 30 s would let slowloris linger).
      connectionsCheckingInterval: 1_000,
    },
  }) as Server;
  // A connection idle this long (a stalled upload) is destroyed, freeing what its request held.
  server.timeout = config.idleTimeoutSeconds * 1000;
  closeIdleConnectionsAfterIo(server);
  answerInFlightBeforeClientErrors(server);
  await listen(server, config.port, config.host, 'PORT');
  const metricsServer =
    config.metricsPort === undefined ? undefined : (createAdaptorServer({
          fetch: createMetricsApp(metrics, refreshGauges).fetch,
          hostname: 'localhost',
          serverOptions: { requireHostHeader: false },
        }) as Server);
  if (metricsServer) await listen(metricsServer, config.metricsPort!, config.host, 'METRICS_PORT');
  const address = server.address() as AddressInfo;
  const startStats = reader.stats();
  logger.info(
    {
      host: address.address,
      port: address.port,
      metrics_port: metricsServer ? (metricsServer.address() as AddressInfo).port : address.port,
      spool: config.spoolDir,
      durability: config.durability,
      storage: storage.description,
      pending: startStats.pending,
      dead: startStats.dead,
    },
    'collector started',
  );
  drainer.start();

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    shuttingDown ??= (async () => {
      const started = Date.now();
      const deadline = started + config.shutdownDeadlineSeconds * 1000;
      const uploadedBefore = drainer.uploaded;
      state.routable = false;
      logger.info({ reason, spooled: reader.stats().pending }, 'shutdown: load balancer health now 503');

      const graceEnd = Math.min(deadline, started + config.shutdownLbGraceSeconds * 1000);
      if (graceEnd > Date.now()) await sleep(graceEnd - Date.now());

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

      logger.info({ pending: reader.stats().pending }, 'shutdown: draining the spool until empty or deadline');
      const emptied = await drainer.untilEmpty(deadline);
      drainer.stop();
      clearInterval(usageResync);
      clearInterval(uploadShareTicker);
      clearInterval(dedupExpiry);
      // Uploads still in flight are cut now, at the deadline; their crashes stay in the spool.
      storage.destroy();
      state.accepting = false;
      const left = reader.stats();
      const uploaded = drainer.uploaded - uploadedBefore;
      metrics.shutdownDrain.inc({ result: 'uploaded' }, uploaded);
      metrics.shutdownDrain.inc({ result: 'left' }, left.pending);
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      await writer.close();
      closeSpoolDatabase(drainerDb);
      lock.release();
      logger.info(
        { uploaded, left_pending: left.pending, left_dead: left.dead, emptied, ms: Date.now() - started },
        emptied ? 'shutdown complete: spool empty' : 'shutdown complete: deadline reached; the rest is drained on next start',
      );
    })();
    return shuttingDown;
  };

  const reloadUploadTokens = () => {
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
  };

  return { address, shutdown, reloadUploadTokens };
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

/** Listens, or says in one line which setting keeps it from listening (CannotStart). */
function listen(server: Server, port: number, host: string, portSetting: 'PORT' | 'METRICS_PORT'): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenProblem(error, port, host, portSetting));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function listenProblem(error: NodeJS.ErrnoException, port: number, host: string, portSetting: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new CannotStart(portSetting, `${host}:${port} is in use (EADDRINUSE); stop what listens there or set ${portSetting} to a free port`);
    case 'EACCES':
      return new CannotStart(portSetting, `no permission to listen on ${host}:${port} (EACCES); ports below 1024 need privileges`);
    case 'EADDRNOTAVAIL':
      return new CannotStart('HOST', `${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return new CannotStart('HOST', `${host} does not resolve (${error.code}); set HOST to an address of this machine, or 0.0.0.0 for all`);
    default:
      return error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
