/**
 * The one shape a turned-away report takes: the answer (status and body, Antenna's bytes), the
 * reason it is counted under in `crashspool_crashes_rejected_total`, and the log line that says
 * why (I6). Every step of `/submit` that refuses throws one; the route answers it in one place.
 */
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Overloaded } from '../report/memory-budget.js';
import { ClientGone, ReportRejected } from '../report/report-refusal.js';
import { spoolFailureReason } from '../spool/runtime/errors.js';

export const RETRY_AFTER_SECONDS = '30';

type Status = 200 | 400 | 401 | 403 | 413 | 503;

interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

export class Refusal extends Error {
  constructor(
    /** The metric reason: `malformed_<reason>`, `too_large_<limit>`, `unauthorized`, `spool_full`, … */
    readonly reason: string,
    readonly status: Status,
    /** The answer's body; null: no body at all (nobody is there to read it). */
    readonly body: string | null,
    readonly log?: LogLine,
  ) {
    super(`${status} ${reason}`);
  }
}

/** A policy's decision against the sender (sender-checks.ts). */
export const senderRefusal = (decision: { reason: string; status: 200 | 400 | 401 | 403; body: string }, uploadToken: string | undefined) =>
  new Refusal(decision.reason, decision.status, decision.body, {
    level: 'info',
    message: 'crash report refused for its sender',
    fields: { reason: decision.reason, upload_token: uploadToken },
  });

/** A bug of ours met while reading or building a crash: logged with its stack, it fails this request only. */
export const unexpectedRefusal = (error: unknown) =>
  new Refusal('unexpected_error', 400, 'Discarded=malformed_invalid_payload_structure', {
    level: 'error',
    message: 'unexpected error while reading a crash report; crash refused',
    fields: { err: error },
  });

/** The answer to a report that could not be read (parseReport's failures). */
export function parseRefusal(error: unknown, inFlightBytes: number): Refusal {
  if (error instanceof Overloaded) {
    return new Refusal('overloaded', 503, 'Discarded=overloaded', {
      level: 'warn',
      message: 'in-flight memory budget spent; crash refused',
      fields: { in_flight_bytes: inFlightBytes },
    });
  }
  if (error instanceof ReportRejected) {
    if (error.unexpected !== undefined) return unexpectedRefusal(error.unexpected);
    return new Refusal(error.metricReason, error.status, error.body, { level: 'info', message: 'crash report rejected', fields: { reason: error.body } });
  }
  if (error instanceof ClientGone) {
    return new Refusal('client_gone', 400, null, { level: 'info', message: 'client disconnected mid-upload; nothing stored' });
  }
  return unexpectedRefusal(error);
}

/** A crash the spool could not take (full, disk full, the writer gone): 503, so the client may try later. */
export function spoolRefusal(error: unknown, crashId: string): Refusal {
  const reason = spoolFailureReason(error);
  return new Refusal(reason, 503, `Discarded=${reason}`, { level: 'error', message: 'spooling failed; crash refused', fields: { crash_id: crashId, err: error, reason } });
}

export const shuttingDown = new Refusal('shutting_down', 503, 'Discarded=shutting_down');

/**
 * Counts, logs and answers a refusal. No `Connection: close`: closing while the client still
 * sends its body makes it see a reset instead of the answer; @hono/node-server drains the unread
 * rest (bounded in bytes and time) before the connection is reused or closed.
 */
export function answer(refusal: Refusal, metrics: Metrics, logger: Logger, userAgent: string): Response {
  metrics.rejected.inc({ reason: refusal.reason });
  if (refusal.log) logger[refusal.log.level]({ ...refusal.log.fields, user_agent: userAgent }, refusal.log.message);
  if (refusal.body === null) return new Response(null, { status: refusal.status });
  const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
  if (refusal.status === 503) headers['Retry-After'] = RETRY_AFTER_SECONDS;
  return new Response(refusal.body, { status: refusal.status, headers });
}
