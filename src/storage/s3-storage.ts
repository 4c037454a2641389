/**
 * S3 (or any S3-compatible server) via @aws-sdk/client-s3. Credentials and region come from the
 * standard AWS chain. Checksums are sent only when required: the SDK's default streams bodies as
 * `aws-chunked` with a trailing CRC32, which Ceph RGW rejects (411).
 *
 * Integrity: SigV4 signs the body's SHA-256 (`x-amz-content-sha256`) and the server refuses a body
 * that does not match it (400 XAmzContentSHA256Mismatch; AWS and Ceph RGW alike). For dumps the
 * SHA-256 computed when the crash was received is signed, so the check covers the bytes from the
 * ack to the bucket — and the SDK does not hash the dump again.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import type { Logger } from '../logger.js';
import { StorageCheckFailed, StorageError, type CrashStorage, type FailureScope } from './storage.js';

/** Error codes that mean the whole bucket is unusable right now, not this one request. */
const OUTAGE_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'AuthorizationHeaderMalformed',
  'ExpiredToken',
  'InvalidAccessKeyId',
  'InvalidBucketName',
  'InvalidToken',
  'NoSuchBucket',
  'PermanentRedirect',
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
  'TemporaryRedirect',
]);
/** Network errors that mean nobody answers at that address. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function classifyS3Error(error: unknown): { scope: FailureScope; outage: boolean } {
  if (!(error instanceof S3ServiceException)) {
    return { scope: 'storage', outage: UNREACHABLE_CODES.has((error as NodeJS.ErrnoException).code ?? '') };
  }
  if (OUTAGE_CODES.has(error.name)) return { scope: 'storage', outage: true };
  const status = error.$metadata.httpStatusCode ?? 0;
  // 5xx (SlowDown included), 408 and 429 concern this request; the drainer retries it promptly.
  if (status >= 500 || status === 408 || status === 429) return { scope: 'storage', outage: false };
  if (status === 401 || status === 403) return { scope: 'storage', outage: true };
  return { scope: status >= 400 ? 'crash' : 'storage', outage: false };
}

/** Jittered exponential backoff for the SDK's retries of one request: 50, 100, 200 … ms, at most 1 s, each drawn from its upper half. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(1000, 50 * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export interface S3Options {
  bucket: string;
  /** Key prefix such as `prod/` (empty for none), so deployments can share a bucket. */
  prefix: string;
  endpoint: string | undefined;
  timeouts: { connectMs: number; idleMs: number; requestMs: number };
  /** Attempts per request by the SDK's standard retry strategy. */
  maxAttempts: number;
  logger: Logger;
}

export class S3Storage implements CrashStorage {
  readonly description: string;
  private readonly client: S3Client;
  /**
   * One abort controller per request in flight, aborted by `destroy` at the shutdown deadline.
   * Not one shared signal: the SDK adds a listener to the signal of each attempt, and a backlog
   * meeting an outage put dozens on one signal (Node's MaxListenersExceededWarning).
   */
  private readonly inFlight = new Set<AbortController>();
  private destroyed = false;

  constructor(private readonly options: S3Options) {
    this.description = `s3://${options.bucket}/${options.prefix}`;
    const sdkLogger = options.logger.child({ component: 'aws-sdk' });
    this.client = new S3Client({
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      region: process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK's standard strategy (retries 5xx, SlowDown, timeouts and connection errors, with a
      // retry quota that stops spending retries when most requests fail), with a short jittered
      // backoff instead of its 100 ms / 500 ms (throttling) bases: a request waiting to be retried
      // holds one of the drainer's upload slots, and under partial failure those waits, not the
      // failures, were what slowed draining. A request that still fails reaches the drainer, which
      // frees the slot and retries that crash later with its own, longer backoff.
      retryStrategy: new ConfiguredRetryStrategy(options.maxAttempts, (attempt) => retryDelayMs(attempt)),
      requestHandler: {
        connectionTimeout: options.timeouts.connectMs,
        // No byte in either direction for this long: the socket is closed and the attempt fails.
        socketTimeout: options.timeouts.idleMs,
        // The whole attempt, first byte to last; without throwOnRequestTimeout it only warns.
        requestTimeout: options.timeouts.requestMs,
        throwOnRequestTimeout: true,
      },
      // The SDK logs every failed request at error level; the drainer logs each failure with its
      // crash and what happens next, so the SDK's own account goes to debug.
      logger: {
        debug: (...content: unknown[]) => sdkLogger.debug({ sdk: content }, 'AWS SDK'),
        info: () => undefined,
        warn: (...content: unknown[]) => sdkLogger.warn({ sdk: content }, 'AWS SDK warning'),
        error: (...content: unknown[]) => sdkLogger.debug({ sdk: content }, 'AWS SDK error'),
      },
    });
  }

  async put(key: string, body: Buffer, contentType: string, sha256?: string): Promise<void> {
    const fullKey = `${this.options.prefix}${key}`;
    const command = new PutObjectCommand({
      Bucket: this.options.bucket,
      Key: fullKey,
      Body: body,
      ContentType: contentType,
      ContentLength: body.length,
    });
    if (sha256 !== undefined) {
      // The signer signs this header's value instead of hashing the body itself.
      command.middlewareStack.add(
        (next) => (args) => {
          (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
          return next(args);
        },
        { step: 'build', name: 'crashspoolReceivedSha256' },
      );
    }
    const request = new AbortController();
    if (this.destroyed) request.abort(new Error('storage closed at shutdown'));
    this.inFlight.add(request);
    try {
      await this.client.send(command, { abortSignal: request.signal });
    } catch (error) {
      const { scope, outage } = classifyS3Error(error);
      const answered = error instanceof S3ServiceException && error.$metadata.httpStatusCode !== undefined;
      throw new StorageError(`PUT ${fullKey}: ${describeS3Error(error)}`, scope, { cause: error, outage, answered });
    } finally {
      this.inFlight.delete(request);
    }
  }

  async checkReachable(): Promise<void> {
    try {
      // One attempt, bounded: the heartbeat reports what it found, it does not wait for retries.
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }), {
        abortSignal: AbortSignal.timeout(this.options.timeouts.connectMs + this.options.timeouts.idleMs),
      });
    } catch (error) {
      throw new StorageError(`HEAD bucket ${this.options.bucket}: ${describeS3Error(error)}`, 'storage', { cause: error, outage: true });
    }
  }

  async checkReadWrite(): Promise<string> {
    const key = `${this.options.prefix}crashspool-check/${randomUUID()}`;
    const body = Buffer.from(`crashspool check ${new Date().toISOString()}`);
    const target = `s3://${this.options.bucket}/${key}`;
    const bounded = () => ({ abortSignal: AbortSignal.timeout(this.options.timeouts.connectMs + this.options.timeouts.idleMs) });
    let step = 'PUT';
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, ContentLength: body.length }), bounded());
      step = 'GET';
      const read = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }), bounded());
      if (!Buffer.from(await read.Body!.transformToByteArray()).equals(body)) throw new Error('read back other bytes');
      step = 'DELETE';
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }), bounded());
    } catch (error) {
      throw new StorageCheckFailed(`${step} ${target}: ${checkProblem(error)}`, checkFailureKind(error));
    }
    return `s3://${this.options.bucket}/${this.options.prefix}: a probe written, read back and deleted`;
  }

  destroy(): void {
    this.destroyed = true;
    for (const request of this.inFlight) request.abort(new Error('storage closed at shutdown'));
    this.client.destroy();
  }
}

function describeS3Error(error: unknown): string {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    // An answer without an error body (HEAD, or a proxy's) leaves the SDK only its status.
    if (error.name === 'UnknownError' || error.name === 'Unknown') return `HTTP ${status ?? '?'} ${STATUS_TEXT[status ?? 0] ?? ''}`.trim();
    return `${error.name} (HTTP ${status ?? '?'}): ${error.message}`;
  }
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code}: ${(error as Error).message}` : String((error as Error).message ?? error);
}

const STATUS_TEXT: Record<number, string> = { 301: 'Moved Permanently', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** No credentials were found at all (the SDK's provider chain came up empty): a setting, not the network. */
const noCredentials = (error: unknown): boolean => (error as Error)?.name === 'CredentialsProviderError';

/** What `check` says of an S3 failure, in the operator's terms: which setting to fix, or that nobody answers. */
function checkProblem(error: unknown): string {
  const described = describeS3Error(error);
  if (noCredentials(error)) return 'no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the process a role';
  if (!(error instanceof S3ServiceException)) return `unreachable: ${described}; check S3_ENDPOINT and the network`;
  switch (error.name) {
    case 'NoSuchBucket':
      return `${described}; the bucket in STORAGE_URL does not exist`;
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'ExpiredToken':
    case 'InvalidToken':
      return `${described}; the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a role) are not accepted`;
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return `${described}; the credentials lack a permission (the collector needs s3:PutObject; check also s3:GetObject and s3:DeleteObject on crashspool-check/*)`;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return `${described}; the bucket is in another region than AWS_REGION`;
    default: {
      // Answers without an error body say only their status.
      const status = error.$metadata.httpStatusCode;
      if (status === 403) return `${described}; the credentials are not accepted or lack a permission (s3:PutObject; for check also s3:GetObject and s3:DeleteObject)`;
      if (status === 404) return `${described}; the bucket in STORAGE_URL does not exist`;
      if (status === 301) return `${described}; the bucket is in another region than AWS_REGION`;
      return described;
    }
  }
}

function checkFailureKind(error: unknown): 'setting' | 'unreachable' {
  if (noCredentials(error)) return 'setting';
  if (!(error instanceof S3ServiceException)) return 'unreachable';
  return (error.$metadata.httpStatusCode ?? 0) >= 500 ? 'unreachable' : 'setting';
}
