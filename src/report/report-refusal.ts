/**
 * How reading a report fails: ReportRejected (answered 400 or 413 with Antenna's body; nothing of
 * the report is stored) or ClientGone (nobody left to answer).
 */
import { Overloaded } from './memory-budget.js';

export interface ReportLimits {
  maxBodyBytes: number;
  maxDecompressedBytes: number;
  maxParts: number;
  maxAnnotations: number;
  maxAnnotationBytes: number;
  maxDumpBytes: number;
  maxTotalDumpBytes: number;
  /** Bodies up to this size as sent are read whole and parsed in one pass (WHOLE_BODY_MAX_BYTES). */
  wholeBodyMaxBytes: number;
}

/** A report refused with a clear answer; nothing of it is stored. */
export class ReportRejected extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly reason: string,
    /** Set when the refusal hides an unexpected error (a bug): logged with its stack. */
    readonly unexpected?: unknown,
  ) {
    super(`${status} ${reason}`);
  }

  /** The answer's reason as metrics and logs name it: `too_large_<limit>` or `malformed_<reason>`. */
  get metricReason(): string {
    return this.status === 413 ? `too_large_${this.reason}` : `malformed_${this.reason}`;
  }

  get body(): string {
    return `Discarded=${this.metricReason}`;
  }
}

/** The client went away before the body was complete; there is nobody to answer. */
export class ClientGone extends Error {}

export const malformed = (reason: string) => new ReportRejected(400, reason);
export const tooLarge = (reason: string) => new ReportRejected(413, reason);

/**
 * What a failed parse is answered with. Errors of the request's own making pass as they are; a
 * multipart syntax error is `invalid_payload_structure`; anything else is a bug of ours, which
 * still fails this request only.
 */
export function refusal(error: unknown): Error {
  if (error instanceof ReportRejected || error instanceof ClientGone || error instanceof Overloaded) return error;
  // busboy (1.6) reports a broken form with plain Errors and no code or class of their own, so
  // its message is all there is to tell them from a bug of ours.
  if (error instanceof Error && /^(Unexpected end of form|Malformed part header|Multipart:)/.test(error.message)) {
    return malformed('invalid_payload_structure');
  }
  return new ReportRejected(400, 'invalid_payload_structure', error);
}
