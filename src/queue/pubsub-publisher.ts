/**
 * Google Pub/Sub (today's Antenna on GCP) through its REST API: one `topics.publish` call per batch,
 * each message's data the crash ID's UTF-8 bytes and no attributes, as Antenna sends. Pub/Sub answers
 * a publish whole — one message ID per message, in order, or an error for the call — so a crash
 * counts as published only when the answer holds exactly one ID per message sent. A call refused as
 * INVALID_ARGUMENT is tried again crash by crash, so that one message the topic will not take fails
 * alone (scope `crash`) and the others go through; when none goes through, the call as a whole failed.
 *
 * REST and not @google-cloud/pubsub: its current major needs Node 22 (ours run 20), and its
 * publisher batches, retries and flow-controls on timers of its own where the announcer already
 * does, which would hide which crash was confirmed when. Credentials come from Google's standard
 * chain (google-auth-library: GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata
 * server); with PUBSUB_EMULATOR_HOST set, as Google's clients do, the emulator is used over plain
 * HTTP without credentials. Every call is bounded by the publish timeout and cut by `close`.
 * Permissions: `pubsub.topics.publish` and `pubsub.topics.get` (the health probe), i.e.
 * roles/pubsub.publisher plus roles/pubsub.viewer on the topic.
 */
import type { GoogleAuth } from 'google-auth-library';
import type { Logger } from '../logger.js';
import { PublishError, type CrashPublisher, type PublishFailure, type PublishResult } from './publisher.js';

/** Pub/Sub takes up to 1,000 messages per call; a batch of this size keeps one call small. */
const PUBSUB_BATCH = 50;
const PUBSUB_SCOPE = 'https://www.googleapis.com/auth/pubsub';
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export interface PubsubOptions {
  /** projects/<project>/topics/<topic> */
  topic: string;
  /** host:port of the Pub/Sub emulator (PUBSUB_EMULATOR_HOST); undefined: Google's service. */
  emulatorHost: string | undefined;
  /** The whole call, connecting included. */
  timeoutMs: number;
  logger: Logger;
}

/** A call Pub/Sub answered with an error status. */
class PubsubAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly grpcStatus: string,
    message: string,
  ) {
    super(`${status} ${grpcStatus}: ${message}`);
  }
}

function failureOf(error: unknown): PublishFailure {
  if (error instanceof PublishError) return error.reason;
  if (error instanceof PubsubAnswerError) {
    if (error.status === 401 || error.status === 403) return 'denied';
    if (error.status === 404) return 'missing';
    return 'error';
  }
  if (error instanceof SyntaxError) return 'malformed';
  const name = (error as Error)?.name ?? '';
  if (name === 'TimeoutError' || name === 'AbortError') return 'timeout';
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
  if (REFUSED_CODES.has(cause?.code ?? '') || REFUSED_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return 'refused';
  // google-auth-library found no credentials, or could not get a token.
  if (/credentials|token/i.test((error as Error)?.message ?? '')) return 'denied';
  return 'error';
}

export class PubsubPublisher implements CrashPublisher {
  readonly description: string;
  readonly batchSize = PUBSUB_BATCH;
  private readonly base: string;
  private auth: Promise<GoogleAuth> | undefined;
  /** One abort controller per call in flight, cut by `close`. */
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(private readonly options: PubsubOptions) {
    this.description = `pubsub:${options.topic}${options.emulatorHost ? ` (emulator ${options.emulatorHost})` : ''}`;
    this.base = options.emulatorHost ? `http://${options.emulatorHost}/v1/` : 'https://pubsub.googleapis.com/v1/';
  }

  async publish(crashIds: readonly string[]): Promise<PublishResult> {
    let refusal: PubsubAnswerError;
    try {
      return { published: await this.publishAll(crashIds), failed: [], unknown: [] };
    } catch (error) {
      if (!(isInvalidArgument(error) && crashIds.length > 1)) throw this.publishError(error);
      refusal = error;
    }
    const result: PublishResult = { published: [], failed: [], unknown: [] };
    for (const crashId of crashIds) {
      try {
        result.published.push(...(await this.publishAll([crashId])));
      } catch (error) {
        if (!isInvalidArgument(error)) throw this.publishError(error);
        result.failed.push({ crashId, error: error.message, reason: 'rejected', scope: 'crash' });
      }
    }
    // Refused one by one, every one: the topic, not a message, is what Pub/Sub refuses, and no
    // crash may be dead-lettered for it.
    if (result.published.length === 0) throw this.publishError(refusal);
    return result;
  }

  /** The crash IDs confirmed: all of them, or a PubsubAnswerError / network error / PublishError. */
  private async publishAll(crashIds: readonly string[]): Promise<string[]> {
    const messages = crashIds.map((crashId) => ({ data: Buffer.from(crashId, 'utf8').toString('base64') }));
    const answer = await this.call('POST', `${this.options.topic}:publish`, { messages });
    const ids = (answer as { messageIds?: unknown } | null)?.messageIds;
    if (!Array.isArray(ids) || ids.length !== crashIds.length || !ids.every((id) => typeof id === 'string' && id !== '')) {
      throw new PublishError(`publish to ${this.description}: the answer holds ${Array.isArray(ids) ? ids.length : 'no'} message IDs for ${crashIds.length} messages`, 'malformed');
    }
    return [...crashIds];
  }

  async checkReachable(): Promise<void> {
    try {
      await this.call('GET', this.options.topic);
      await this.checkMayPublish();
    } catch (error) {
      throw this.publishError(error, `checking topic ${this.options.topic}`);
    }
  }

  /** Asks IAM whether these credentials may publish, without publishing (other readers of the topic may not ignore a test message). */
  private async checkMayPublish(): Promise<void> {
    let answer;
    try {
      answer = await this.call('POST', `${this.options.topic}:testIamPermissions`, { permissions: ['pubsub.topics.publish'] });
    } catch (error) {
      // The emulator has no IAM (501 UNIMPLEMENTED): there, whoever reaches it may publish.
      if (error instanceof PubsubAnswerError && error.status === 501) return;
      throw error;
    }
    const granted = (answer as { permissions?: unknown } | null)?.permissions;
    if (!Array.isArray(granted) || !granted.includes('pubsub.topics.publish')) {
      throw new PublishError(`these credentials may not publish to ${this.options.topic} (pubsub.topics.publish not granted)`, 'denied');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const request of this.inFlight) request.abort(new Error('publisher closed at shutdown'));
  }

  private publishError(error: unknown, what = `publish to ${this.description}`): PublishError {
    if (error instanceof PublishError) return error;
    return new PublishError(`${what}: ${(error as Error).message}`, failureOf(error), { cause: error });
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const request = new AbortController();
    if (this.closed) request.abort(new Error('publisher closed at shutdown'));
    const timer = setTimeout(() => request.abort(new DOMException(`no answer within ${this.options.timeoutMs} ms`, 'TimeoutError')), this.options.timeoutMs);
    this.inFlight.add(request);
    try {
      const headers = new Headers(await this.credentials(request.signal));
      if (body !== undefined) headers.set('content-type', 'application/json');
      const response = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: request.signal });
      const text = await response.text();
      if (!response.ok) {
        const error = parsedError(text);
        throw new PubsubAnswerError(response.status, error.status ?? response.statusText, error.message ?? text.slice(0, 200));
      }
      return JSON.parse(text) as unknown;
    } catch (error) {
      // An abort surfaces as the reason it was given (a timeout, or the close at shutdown).
      throw request.signal.aborted ? (request.signal.reason as Error) : error;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(request);
    }
  }

  private async credentials(signal: AbortSignal): Promise<Headers | undefined> {
    if (this.options.emulatorHost) return undefined;
    this.auth ??= import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth({ scopes: PUBSUB_SCOPE }));
    const auth = await this.auth;
    // Getting a token is a call of its own (metadata server, token endpoint): bounded like the rest.
    return await new Promise<Headers>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      auth.getRequestHeaders().then(resolve, reject);
    });
  }
}

/** Pub/Sub's answer for a message it will not take (400 INVALID_ARGUMENT), not FAILED_PRECONDITION or other 400s of the topic. */
function isInvalidArgument(error: unknown): error is PubsubAnswerError {
  return error instanceof PubsubAnswerError && error.status === 400 && error.grpcStatus === 'INVALID_ARGUMENT';
}

function parsedError(text: string): { status?: string; message?: string } {
  try {
    const error = (JSON.parse(text) as { error?: { status?: unknown; message?: unknown } }).error;
    return { status: typeof error?.status === 'string' ? error.status : undefined, message: typeof error?.message === 'string' ? error.message : undefined };
  } catch {
    return {};
  }
}
