/**
 * The HTTP surface, built by a function so tests can make one. Handlers are small; everything
 * they need comes in through `AppDeps`.
 */
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { annotate, buildCrash, clientKind, type ReceivedReport } from '../intake/raw-crash.js';
import type { Throttler } from '../policy/throttler.js';
import { reportIdentity } from '../intake/report-identity.js';
import { checkClaims, checkSender, type Refusal } from '../policy/sender-checks.js';
import type { UploadToken, UploadTokens } from '../policy/upload-tokens.js';
import type { RateLimits } from '../policy/rate-limit.js';
import { newCrashId } from '../crash-id.js';
import { ClientGone, parseReport, ReportRejected } from '../report/report-parser.js';
import type { CrashAppender } from '../spool/spool-ports.js';
import { Overloaded, type MemoryBudget, type Reservation } from '../report/memory-budget.js';
import { spoolFailureReason } from '../spool/spool-errors.js';
import { discardRest } from './request-body.js';
import type { VersionInfo } from '../version.js';

export interface ServiceState {
  /** False from the first shutdown signal on: load balancers should stop routing here. */
  readonly routable: boolean;
  /** False once the spool is closed: nothing can be acknowledged any more. */
  readonly accepting: boolean;
}

export interface AppDeps {
  config: Config;
  spool: CrashAppender;
  /** Told after each commit so it uploads without waiting for its timer. */
  onSpooled: () => void;
  state: ServiceState;
  logger: Logger;
  metrics: Metrics;
  version: VersionInfo;
  heartbeat: () => Promise<{ healthy: boolean; checks: Record<string, unknown> }>;
  /** Decides from the annotations whether a report is stored (THROTTLE_RULES). */
  throttler: Throttler;
  /** Who may post (UPLOAD_TOKENS); undefined: anyone. */
  tokens: UploadTokens | undefined;
  rateLimits: RateLimits;
  /** Bounds the report bytes all requests in flight hold (admission control). */
  memory: MemoryBudget;
  /** Brings the spool gauges up to date before a scrape. */
  refreshGauges: () => void;
  /** False when `/metrics` is served on its own port (METRICS_PORT). */
  serveMetrics: boolean;
}

/** `/metrics` in Prometheus text format, for the public app or a separate metrics port. */
export function metricsRoute(metrics: Metrics, refreshGauges: () => void) {
  return async () => {
    refreshGauges();
    return new Response(await metrics.registry.metrics(), { headers: { 'Content-Type': metrics.registry.contentType } });
  };
}

export function createMetricsApp(metrics: Metrics, refreshGauges: () => void) {
  const app = new Hono();
  app.get('/metrics', metricsRoute(metrics, refreshGauges));
  return app;
}

const RETRY_AFTER_SECONDS = '30';

/** Antenna's acknowledgement: the only answer body that ends with a newline. */
const crashIdAnswer = (crashId: string) => new Response(`CrashID=bp-${crashId}\n`, { headers: { 'Content-Type': 'text/plain' } });
/** How long a refused request's unread body is read and dropped before the answer (see discardRest). */
const REFUSAL_DRAIN_MS = 1000;

export function createApp(deps: AppDeps) {
  const { config, logger, metrics } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  // No `Connection: close` on refusals: closing while the client still sends its body makes it see
  // a reset instead of the answer. @hono/node-server drains the unread rest (bounded in bytes and
  // time) before the connection is reused or closed.
  const refuse = (reason: string, status: 200 | 400 | 401 | 403 | 413 | 503, body: string) => {
    metrics.rejected.inc({ reason });
    const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
    if (status === 503) headers['Retry-After'] = RETRY_AFTER_SECONDS;
    return new Response(body, { status, headers });
  };

  /**
   * A report that broke the parser or the raw-crash builder in a way we did not foresee: a bug of
   * ours, so logged with its stack and counted apart, but it fails this request only.
   */
  const refuseUnexpected = (error: unknown, userAgent: string) => {
    logger.error({ err: error, user_agent: userAgent }, 'unexpected error while reading a crash report; crash refused');
    return refuse('unexpected_error', 400, 'Discarded=malformed_invalid_payload_structure');
  };

  /** The answer to a report that could not be read (parseReport's failures). */
  const refuseUnparsed = (error: unknown, userAgent: string) => {
    if (error instanceof Overloaded) {
      logger.warn({ in_flight_bytes: deps.memory.inUse, user_agent: userAgent }, 'in-flight memory budget spent; crash refused');
      return refuse('overloaded', 503, 'Discarded=overloaded');
    }
    if (error instanceof ReportRejected) {
      if (error.unexpected !== undefined) return refuseUnexpected(error.unexpected, userAgent);
      logger.info({ reason: error.body, user_agent: userAgent }, 'crash report rejected');
      return refuse(error.metricReason, error.status, error.body);
    }
    if (error instanceof ClientGone) {
      metrics.rejected.inc({ reason: 'client_gone' });
      logger.info({ user_agent: userAgent }, 'client disconnected mid-upload; nothing stored');
      return new Response(null, { status: 400 });
    }
    return refuseUnexpected(error, userAgent);
  };

  const refuseSender = (found: Refusal, userAgent: string, sender?: UploadToken) => {
    logger.info({ reason: found.reason, upload_token: sender?.name, user_agent: userAgent }, 'crash report refused for its sender');
    return refuse(found.reason, found.status, found.body);
  };

  /** Sender check → parse → crash → spool commit → ack. Nothing is acknowledged before the commit (I1). */
  const accept = async (url: string, incoming: HttpBindings['incoming'], userAgent: string, memory: Reservation, started: number) => {
    const query = new URL(url).searchParams;
    const senderCheck = checkSender(deps.tokens, deps.rateLimits, incoming.headers.authorization, query);
    if ('refusal' in senderCheck) {
      memory.close();
      await discardRest(incoming, REFUSAL_DRAIN_MS);
      return refuseSender(senderCheck.refusal, userAgent);
    }
    const { sender } = senderCheck;
    // Never stored, never logged: the query is otherwise copied into the annotations.
    query.delete('token');

    let report;
    try {
      report = await parseReport(incoming, incoming.headers, config, memory);
    } catch (error) {
      // The refused report's bytes are garbage now: give them back before waiting on the rest.
      memory.close();
      if (!(error instanceof ClientGone)) await discardRest(incoming, REFUSAL_DRAIN_MS);
      return refuseUnparsed(error, userAgent);
    }

    const received: ReceivedReport = {
      report,
      receivedAt: new Date(),
      userAgent,
      query: Object.fromEntries(query),
      removeKeys: config.removeAnnotations,
    };
    let annotated;
    let decision;
    try {
      annotated = annotate(received);
      decision = deps.throttler.decide(annotated.annotations);
    } catch (error) {
      return refuseUnexpected(error, userAgent);
    }
    const claims = checkClaims(sender, annotated.annotations);
    if ('refusal' in claims) return refuseSender(claims.refusal, userAgent, sender);
    metrics.throttled.inc({ rule: decision.rule, result: decision.verdict });
    if (decision.verdict === 'reject') {
      logger.info({ throttle_rule: decision.rule, user_agent: userAgent }, 'crash rejected by throttle rule; nothing stored');
      return new Response(`Discarded=rule_${decision.rule}`, { headers: { 'Content-Type': 'text/plain' } });
    }
    if (decision.verdict === 'fakeaccept') {
      // As Antenna: the crash ID the stage submitter chose, else a new one with the FAKEACCEPT digit.
      const crashId = claims.crashId ?? newCrashId(received.receivedAt, 3);
      logger.info({ crash_id: crashId, throttle_rule: decision.rule, user_agent: userAgent }, 'crash fake-accepted by throttle rule; nothing stored');
      return crashIdAnswer(crashId);
    }

    let crash;
    try {
      crash = buildCrash(received, annotated, {
        rule: decision.rule,
        digit: 0,
        ...(claims.crashId === undefined ? {} : { crashId: claims.crashId }),
        ...(sender === undefined ? {} : { uploadToken: sender.name }),
      });
    } catch (error) {
      return refuseUnexpected(error, userAgent);
    }
    // A crash ID the sender chose is the report's identity itself (a repeat finds it in the spool).
    const identity =
      config.dedupWindow > 0 && claims.crashId === undefined
        ? reportIdentity(annotated.annotations, report.dumps, crash.rawCrash.metadata.dump_checksums)
        : undefined;
    let duplicateOf;
    try {
      ({ duplicateOf } = await deps.spool.append(crash, identity && { ...identity, notBefore: crash.receivedAt - config.dedupWindow }));
    } catch (error) {
      const reason = spoolFailureReason(error);
      logger.error({ crash_id: crash.crashId, err: error, reason }, 'spooling failed; crash refused');
      return refuse(reason, 503, `Discarded=${reason}`);
    }
    if (duplicateOf !== undefined) {
      metrics.duplicates.inc();
      logger.info(
        { crash_id: duplicateOf, report_uuid: identity?.reportUuid, user_agent: userAgent },
        'report received again: answered with its first crash ID, nothing stored',
      );
      return crashIdAnswer(duplicateOf);
    }
    deps.onSpooled();

    const client = clientKind(report, userAgent);
    const seconds = (performance.now() - started) / 1000;
    metrics.accepted.inc({ client });
    metrics.bytesReceived.inc(report.payloadSize);
    metrics.ackSeconds.observe(seconds);
    logger.info(
      {
        crash_id: crash.crashId,
        client,
        bytes: report.payloadSize,
        dumps: report.dumps.length,
        throttle_rule: decision.rule,
        ms: Math.round(seconds * 1000),
      },
      'crash accepted',
    );
    return crashIdAnswer(crash.crashId);
  };
  app.post('/submit', async (c) => {
    const started = performance.now();
    metrics.received.inc();
    if (!deps.state.accepting) return refuse('shutting_down', 503, 'Discarded=shutting_down');

    const incoming = c.env.incoming;
    const userAgent = incoming.headers['user-agent'] ?? '';
    const memory = deps.memory.open();
    try {
      return await accept(c.req.url, incoming, userAgent, memory, started);
    } finally {
      memory.close();
    }
  });

  app.all('/submit', () => new Response('Method Not Allowed\n', { status: 405, headers: { Allow: 'POST' } }));

  app.get('/__lbheartbeat__', (c) =>
    deps.state.routable ? c.text('OK\n') : c.text('shutting down\n', 503, { 'Retry-After': RETRY_AFTER_SECONDS }),
  );
  app.get('/__heartbeat__', async (c) => {
    const { healthy, checks } = await deps.heartbeat();
    return c.json(checks, healthy ? 200 : 503);
  });
  app.get('/__version__', (c) => c.json(deps.version));
  if (deps.serveMetrics) app.get('/metrics', metricsRoute(metrics, deps.refreshGauges));

  app.onError((error, c) => {
    logger.error({ err: error, path: c.req.path }, 'unhandled error in request');
    return c.text('Internal Server Error\n', 500);
  });
  return app;
}
