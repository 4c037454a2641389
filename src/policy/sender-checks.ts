/**
 * Who may post what: the upload token (before any body byte is read), then what the report claims
 * (its product, a crash ID of its own). Pure decisions; the HTTP layer answers them.
 */
import type { Annotations } from '../crash.js';
import { isCrashId } from '../crash-id.js';
import { annotationText } from '../report/annotation-text.js';
import type { RateLimits } from './rate-limit.js';
import { presentedToken, type UploadToken, type UploadTokens } from './upload-tokens.js';

/** A request turned away: the metric reason, the status and the body (Antenna's style). */
export interface Refusal {
  reason: string;
  status: 200 | 400 | 401 | 403;
  body: string;
}

const refusal = (reason: string, status: Refusal['status'], body = `Discarded=${reason}`): Refusal => ({ reason, status, body });

/**
 * The sender of a request, from its token, or the refusal. With no tokens file, everyone may post
 * (sender undefined). Over its rate, a sender is answered 200 (a 4xx/5xx makes retrying clients
 * hammer; Antenna and Sentry answer throttled crashes with 200).
 */
export function checkSender(
  tokens: UploadTokens | undefined,
  limits: RateLimits,
  authorization: string | undefined,
  query: URLSearchParams,
): { sender?: UploadToken } | { refusal: Refusal } {
  if (!tokens) return {};
  const sender = tokens.find(presentedToken(authorization, query));
  if (!sender) return { refusal: refusal('unauthorized', 401) };
  if (sender.maxPerMinute !== undefined && !limits.take(sender.name, sender.maxPerMinute)) return { refusal: refusal('rate_limited', 200) };
  return { sender };
}

/**
 * What the report claims, checked against its sender: a product outside the token's list is
 * forbidden; a `uuid` annotation (a crash ID of its own) only from a token that may set crash
 * IDs, as Antenna's stage submitter — and then it must be a valid crash ID.
 */
export function checkClaims(sender: UploadToken | undefined, annotations: Annotations): { crashId?: string } | { refusal: Refusal } {
  if (sender?.products && !sender.products.has(annotationText(annotations, 'ProductName') ?? '')) {
    return { refusal: refusal('forbidden_product', 403) };
  }
  const chosen = annotationText(annotations, 'uuid');
  if (chosen === undefined) return {};
  if (!sender?.maySetCrashId) return { refusal: refusal('unauthorized_uuid', 401) };
  if (!isCrashId(chosen)) return { refusal: refusal('invalid_uuid', 400, 'Discarded=malformed_invalid_uuid') };
  return { crashId: chosen };
}
