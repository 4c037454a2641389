/**
 * Prometheus instruments, all on one registry that `/metrics` serves. Every crash dropped on
 * purpose is counted here (I6).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  // Node's and the process's own metrics under the names dashboards expect (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …).
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics = {
    registry,
    received: new Counter({ name: 'crashspool_crashes_received_total', help: 'Crash reports received on /submit.', registers }),
    accepted: new Counter({
      name: 'crashspool_crashes_accepted_total',
      help: 'Crash reports spooled and acknowledged with a crash ID.',
      labelNames: ['client'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'crashspool_crashes_rejected_total',
      help: 'Crash reports refused, by reason (malformed_*, too_large_*, spool_full, shutting_down, ...).',
      labelNames: ['reason'] as const,
      registers,
    }),
    throttled: new Counter({
      name: 'crashspool_throttle_decisions_total',
      help: 'Throttle decisions on parsed reports by rule and result (accept: stored; reject: answered Discarded=rule_<rule>; fakeaccept: answered a crash ID, not stored).',
      labelNames: ['rule', 'result'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'crashspool_duplicate_reports_total',
      help: 'Reports posted again within DEDUP_WINDOW: answered with the first crash ID, not stored again.',
      registers,
    }),
    bytesReceived: new Counter({
      name: 'crashspool_received_bytes_total',
      help: 'Bytes of accepted report bodies as sent (before gunzip).',
      registers,
    }),
    ackSeconds: new Histogram({
      name: 'crashspool_ack_seconds',
      help: 'Time from request start to the acknowledgement of an accepted crash.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    uploads: new Counter({
      name: 'crashspool_upload_attempts_total',
      help: 'Crash upload attempts by outcome: ok, crash_error (counts toward dead-letter), storage_error (outage, retried).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    uploadSeconds: new Histogram({
      name: 'crashspool_upload_seconds',
      help: 'Time to upload every object of one crash.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    deadLettered: new Counter({
      name: 'crashspool_dead_lettered_total',
      help: 'Crashes moved to the dead-letter state (kept in the spool for an operator).',
      registers,
    }),
    storageUp: new Gauge({
      name: 'crashspool_storage_up',
      help: 'Whether storage answers: 1 when the last background probe succeeded and uploads are not paused after an outage, else 0.',
      registers,
    }),
    queueUp: new Gauge({
      name: 'crashspool_queue_up',
      help: 'With PUBLISH_URL (absent without): whether the processing queue answers (the last probe succeeded and publishing is not paused), else 0.',
      labelNames: ['queue'] as const,
      registers,
    }),
    spoolCrashes: new Gauge({
      name: 'crashspool_spool_crashes',
      help: 'Crashes in the spool by state: pending (to upload), stored (in storage, waiting for the queue), dead.',
      labelNames: ['state'] as const,
      registers,
    }),
    spoolBytes: new Gauge({ name: 'crashspool_spool_bytes', help: 'Bytes of crashes in the spool, counted as uploaded (a report kept gzipped takes about a fifth of that on disk), as SPOOL_MAX_BYTES counts them.', registers }),
    spoolMaxBytes: new Gauge({
      name: 'crashspool_spool_max_bytes',
      help: 'SPOOL_MAX_BYTES: beyond it new crashes are refused (for alerts on spool_bytes / spool_max_bytes).',
      registers,
    }),
    spoolOldestAgeSeconds: new Gauge({
      name: 'crashspool_spool_oldest_age_seconds',
      help: 'Age of the oldest crash in the spool (0 when empty).',
      registers,
    }),
    inflightBytes: new Gauge({
      name: 'crashspool_inflight_bytes',
      help: 'Report bytes held in memory by requests in flight (bounded by INFLIGHT_MAX_BYTES).',
      registers,
    }),
    published: new Counter({
      name: 'crashspool_published_total',
      help: 'Crash IDs the processing queue confirmed (PUBLISH_URL); each crash then leaves the spool.',
      registers,
    }),
    publishFailures: new Counter({
      name: 'crashspool_publish_failures_total',
      help: 'Crash IDs not confirmed by the queue, by reason. The whole call failed (retried after a pause): refused, timeout, denied, missing (no such queue), error, malformed (an answer that could not be read or accounts for no entry). One entry (retried alone): rejected (refused by the queue), unroutable (RabbitMQ returned it: no such queue), nacked, unaccounted (in neither list of the answer).',
      labelNames: ['reason'] as const,
      registers,
    }),
    unannounced: new Counter({
      name: 'crashspool_unannounced_total',
      help: 'Crashes that left the spool unannounced although received while it announced: an operator let announcing go (PUBLISH_URL=none, or spool-inspect drain --no-announce). Each is logged.',
      registers,
    }),
    publishOldestAgeSeconds: new Gauge({
      name: 'crashspool_publish_oldest_age_seconds',
      help: 'How long the longest-waiting stored crash has waited for the queue to confirm its ID (0 when none waits).',
      registers,
    }),
    backgroundErrors: new Counter({
      name: 'crashspool_background_errors_total',
      help: 'Errors of work outside any request (timers, threads), by task; each is logged and the task retried at its next run.',
      labelNames: ['task'] as const,
      registers,
    }),
    shutdownDrain: new Counter({
      name: 'crashspool_shutdown_drain_crashes_total',
      help: 'At shutdown: crashes uploaded during it (uploaded), announced on the queue during it (published) and left for the next start, pending or stored (left).',
      labelNames: ['result'] as const,
      registers,
    }),
  };
  // Every label value an alert reads exists from the start (at 0): a rule that needs an
  // `outcome="ok"` series must not stay silent for a node that never uploaded anything.
  for (const outcome of ['ok', 'crash_error', 'storage_error']) metrics.uploads.inc({ outcome }, 0);
  for (const state of ['pending', 'stored', 'dead']) metrics.spoolCrashes.set({ state }, 0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
