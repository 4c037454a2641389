/**
 * SQS (or any SQS-protocol server) via @aws-sdk/client-sqs: `SendMessageBatch` of up to 10 crash
 * IDs, each entry answered on its own: refused with `SenderFault` (the message's fault), a
 * failure of that crash; without it, of the queue. Entry Ids the answer names that were never sent
 * are handed back as unknown, never read as a crash. The queue URL's origin is the endpoint; credentials and region come from the standard AWS
 * chain. Permissions: `sqs:SendMessage` (batches included) and `sqs:GetQueueUrl` (health probe).
 */
import { GetQueueUrlCommand, SendMessageBatchCommand, SQSClient, SQSServiceException } from '@aws-sdk/client-sqs';
import type { Logger } from '../logger.js';
import { PublishError, type CrashPublisher, type PublishFailure, type PublishResult } from './publisher.js';

/** SQS takes at most 10 messages per batch. */
const SQS_BATCH = 10;
const DENIED_CODES = new Set(['AccessDenied', 'AccessDeniedException', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'ExpiredToken']);
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

export interface SqsOptions {
  queueUrl: string;
  connectMs: number;
  /** The whole call, and the longest no byte may move. */
  timeoutMs: number;
  logger: Logger;
}

const MISSING_CODES = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'NonExistentQueue']);

function failureOf(error: unknown): PublishFailure {
  if ((error as Error)?.name === 'CredentialsProviderError') return 'denied';
  // An answer the SDK could not parse (not JSON, or not the shape it expects).
  if (error instanceof SyntaxError || /Deserialization error/i.test((error as Error).message ?? '')) return 'malformed';
  if (error instanceof SQSServiceException) {
    if (DENIED_CODES.has(error.name) || error.$metadata.httpStatusCode === 403) return 'denied';
    if (MISSING_CODES.has(error.name)) return 'missing';
    return 'error';
  }
  const code = (error as NodeJS.ErrnoException).code ?? '';
  // Before the name: the SDK's HTTP handler names a reset connection (ECONNRESET, EPIPE) TimeoutError.
  if (REFUSED_CODES.has(code)) return 'refused';
  const name = (error as Error).name ?? '';
  if (name === 'TimeoutError' || name === 'AbortError' || code === 'ETIMEDOUT') return 'timeout';
  return 'error';
}

export class SqsPublisher implements CrashPublisher {
  readonly description: string;
  readonly batchSize = SQS_BATCH;
  private readonly client: SQSClient;
  private readonly queueName: string;
  /** One abort controller per call in flight (not one shared signal: see S3Storage), aborted by `close`. */
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  /** Sends `command` with an abort signal of its own that `close` cuts. */
  private async send<T>(send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const request = new AbortController();
    if (this.closed) request.abort(new Error('publisher closed at shutdown'));
    this.inFlight.add(request);
    try {
      return await send(request.signal);
    } finally {
      this.inFlight.delete(request);
    }
  }

  constructor(private readonly options: SqsOptions) {
    const url = new URL(options.queueUrl);
    this.description = `sqs:${url.origin}${url.pathname}`;
    this.queueName = url.pathname.split('/').filter(Boolean).pop()!;
    const sdkLogger = options.logger.child({ component: 'aws-sdk' });
    this.client = new SQSClient({
      endpoint: url.origin,
      region: process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
      // One attempt: the announcer retries with its own backoff and knows which crashes wait.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: options.connectMs, socketTimeout: options.timeoutMs, requestTimeout: options.timeoutMs, throwOnRequestTimeout: true },
      // The loop logs each failure with what happens next; the SDK's own account goes to debug.
      logger: {
        debug: (...content: unknown[]) => sdkLogger.debug({ sdk: content }, 'AWS SDK'),
        info: () => undefined,
        warn: (...content: unknown[]) => sdkLogger.warn({ sdk: content }, 'AWS SDK warning'),
        error: (...content: unknown[]) => sdkLogger.debug({ sdk: content }, 'AWS SDK error'),
      },
    });
  }

  async publish(crashIds: readonly string[]): Promise<PublishResult> {
    const entries = crashIds.map((crashId, index) => ({ Id: String(index), MessageBody: crashId }));
    let answer;
    try {
      answer = await this.send((abortSignal) => this.client.send(new SendMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: entries }), { abortSignal }));
    } catch (error) {
      throw new PublishError(`SendMessageBatch to ${this.description}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
    // Entry Ids are the crash IDs' places in the batch; an answer may name others (a broken server).
    const sent = new Map(entries.map((entry) => [entry.Id, entry.MessageBody]));
    const result: PublishResult = { published: [], failed: [], unknown: [] };
    for (const entry of answer.Successful ?? []) {
      const crashId = sent.get(entry.Id ?? '');
      if (crashId === undefined) result.unknown.push(String(entry.Id));
      else result.published.push(crashId);
    }
    for (const entry of answer.Failed ?? []) {
      const crashId = sent.get(entry.Id ?? '');
      if (crashId === undefined) {
        result.unknown.push(String(entry.Id));
        continue;
      }
      const error = `${entry.Code ?? 'failed'}: ${entry.Message ?? ''}`;
      result.failed.push({ crashId, error, reason: 'rejected', scope: entry.SenderFault === true ? 'crash' : 'queue' });
    }
    return result;
  }

  async checkReachable(): Promise<void> {
    try {
      await this.send((abortSignal) => this.client.send(new GetQueueUrlCommand({ QueueName: this.queueName }), { abortSignal }));
    } catch (error) {
      throw new PublishError(`GetQueueUrl ${this.queueName}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const request of this.inFlight) request.abort(new Error('publisher closed at shutdown'));
    this.client.destroy();
  }
}
