/**
 * `POST /submit`, step by step: the sender (before any body byte is read) → parse → throttle →
 * what the report claims → the crash → spool commit → ack. Nothing is acknowledged before the
 * commit (I1). A step that turns the report away throws a Refusal (refusal.ts); the steps hold the
 * report's bytes on the request's memory reservation, closed by the route.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Crash, ParsedReport } from '../crash.js';
import { newCrashId } from '../crash-id.js';
import { annotate, buildCrash, clientKind, type AnnotatedReport, type ReceivedReport } from '../intake/raw-crash.js';
import { reportIdentity } from '../intake/report-identity.js';
import { checkClaims, checkSender } from '../policy/sender-checks.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RateLimits } from '../policy/rate-limit.js';
import type { ThrottleDecision, Throttler } from '../policy/throttler.js';
import type { UploadToken, UploadTokens } from '../policy/upload-tokens.js';
import type { MemoryBudget, Reservation } from '../report/memory-budget.js';
import type { CrashAppender } from '../spool/runtime/ports.js';
import { parseReport } from '../report/report-parser.js';
import { ClientGone } from '../report/report-refusal.js';
import { parseRefusal, senderRefusal, spoolRefusal, unexpectedRefusal } from './refusal.js';
import { discardRest } from './request-body.js';

/** How long a refused request's unread body is read and dropped before the answer (see discardRest). */
const refusalDrain = (config: Config) => ({ maxMs: 10_000, idleMs: 1000, maxBytes: config.maxBodyBytes });

/** Antenna's acknowledgement: the only answer body that ends with a newline. */
export const crashIdAnswer = (crashId: string) => new Response(`CrashID=bp-${crashId}\n`, { headers: { 'Content-Type': 'text/plain' } });

export interface SubmitDeps {
  config: Config;
  spool: CrashAppender;
  /** Told after each commit so it uploads without waiting for its timer. */
  onSpooled: () => void;
  logger: Logger;
  metrics: Metrics;
  /** Decides from the annotations whether a report is stored (THROTTLE_RULES). */
  throttler: Throttler;
  /** Who may post (UPLOAD_TOKENS); undefined: anyone. */
  tokens: UploadTokens | undefined;
  rateLimits: RateLimits;
  /** Bounds the report bytes all requests in flight hold (admission control). */
  memory: MemoryBudget;
}

export interface Submission {
  url: string;
  incoming: HttpBindings['incoming'];
  userAgent: string;
  /** Holds the report's bytes in the in-flight memory budget. */
  memory: Reservation;
  /** performance.now() when the request began. */
  started: number;
}

export async function submit(deps: SubmitDeps, submission: Submission): Promise<Response> {
  const query = new URL(submission.url).searchParams;
  const sender = await checkTheSender(deps, submission, query);
  const report = await parse(deps, submission);
  const received: ReceivedReport = {
    report,
    receivedAt: new Date(),
    userAgent: submission.userAgent,
    query: Object.fromEntries(query),
    removeKeys: deps.config.removeAnnotations,
  };
  const { annotated, decision } = throttle(deps, received);
  const claims = checkClaims(sender, annotated.annotations);
  if ('refusal' in claims) throw senderRefusal(claims.refusal, sender?.name);
  deps.metrics.throttled.inc({ rule: decision.rule, result: decision.verdict });
  if (decision.verdict === 'reject') {
    deps.logger.info({ throttle_rule: decision.rule, user_agent: submission.userAgent }, 'crash rejected by throttle rule; nothing stored');
    return new Response(`Discarded=rule_${decision.rule}`, { headers: { 'Content-Type': 'text/plain' } });
  }
  if (decision.verdict === 'fakeaccept') {
    // As Antenna: the crash ID the stage submitter chose, else a new one with the FAKEACCEPT digit.
    const crashId = claims.crashId ?? newCrashId(received.receivedAt, 3);
    deps.logger.info({ crash_id: crashId, throttle_rule: decision.rule, user_agent: submission.userAgent }, 'crash fake-accepted by throttle rule; nothing stored');
    return crashIdAnswer(crashId);
  }
  const crash = build(received, annotated, decision, claims.crashId, sender);
  return spoolAndAck(deps, submission, report, annotated, crash, claims.crashId === undefined, decision.rule);
}

/** The sender, from its upload token (with no tokens file: anyone). The token is taken out of the query: never stored, never logged. */
async function checkTheSender({ tokens, rateLimits, config }: SubmitDeps, { incoming, memory }: Submission, query: URLSearchParams): Promise<UploadToken | undefined> {
  const checked = checkSender(tokens, rateLimits, incoming.headers.authorization, query);
  query.delete('token');
  if (!('refusal' in checked)) return checked.sender;
  memory.close();
  await discardRest(incoming, refusalDrain(config));
  throw senderRefusal(checked.refusal, undefined);
}

async function parse(deps: SubmitDeps, { incoming, memory }: Submission): Promise<ParsedReport> {
  try {
    return await parseReport(incoming, incoming.headers, deps.config, memory);
  } catch (error) {
    // The refused report's bytes are garbage now: give them back before waiting on the rest.
    memory.close();
    if (!(error instanceof ClientGone)) await discardRest(incoming, refusalDrain(deps.config));
    throw parseRefusal(error, deps.memory.inUse);
  }
}

function throttle(deps: SubmitDeps, received: ReceivedReport): { annotated: AnnotatedReport; decision: ThrottleDecision } {
  try {
    const annotated = annotate(received);
    return { annotated, decision: deps.throttler.decide(annotated.annotations) };
  } catch (error) {
    throw unexpectedRefusal(error);
  }
}

function build(received: ReceivedReport, annotated: AnnotatedReport, decision: ThrottleDecision, chosenCrashId: string | undefined, sender: UploadToken | undefined): Crash {
  try {
    return buildCrash(received, annotated, {
      rule: decision.rule,
      digit: 0,
      ...(chosenCrashId === undefined ? {} : { crashId: chosenCrashId }),
      ...(sender === undefined ? {} : { uploadToken: sender.name }),
    });
  } catch (error) {
    throw unexpectedRefusal(error);
  }
}

/** Commits the crash (or finds the report stored before), then answers with its crash ID. */
async function spoolAndAck(
  deps: SubmitDeps,
  { userAgent, started }: Submission,
  report: ParsedReport,
  annotated: AnnotatedReport,
  crash: Crash,
  deduplicate: boolean,
  rule: string,
): Promise<Response> {
  const { config, logger, metrics } = deps;
  // A crash ID the sender chose is the report's identity itself (a repeat finds it in the spool).
  const identity = config.dedupWindow > 0 && deduplicate ? reportIdentity(annotated.annotations, report.dumps, crash.rawCrash.metadata.dump_checksums) : undefined;
  let duplicateOf;
  try {
    ({ duplicateOf } = await deps.spool.append(crash, identity && { ...identity, notBefore: crash.receivedAt - config.dedupWindow }));
  } catch (error) {
    throw spoolRefusal(error, crash.crashId);
  }
  if (duplicateOf !== undefined) {
    metrics.duplicates.inc();
    logger.info({ crash_id: duplicateOf, report_uuid: identity?.reportUuid, user_agent: userAgent }, 'report received again: answered with its first crash ID, nothing stored');
    return crashIdAnswer(duplicateOf);
  }
  deps.onSpooled();

  const client = clientKind(report, userAgent);
  const seconds = (performance.now() - started) / 1000;
  metrics.accepted.inc({ client });
  metrics.bytesReceived.inc(report.payloadSize);
  metrics.ackSeconds.observe(seconds);
  logger.info(
    { crash_id: crash.crashId, client, bytes: report.payloadSize, dumps: report.dumps.length, throttle_rule: rule, ms: Math.round(seconds * 1000) },
    'crash accepted',
  );
  return crashIdAnswer(crash.crashId);
}
