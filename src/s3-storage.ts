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
import { HeadBucketCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { StorageError, type CrashStorage, type FailureScope } from './storage.js';

/** Error codes that mean the whole bucket is unusable right now, not this one object. */
const STORAGE_WIDE_CODES = new Set([
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
  'SlowDown',
  'TemporaryRedirect',
]);

export function classifyS3Error(error: unknown): FailureScope {
  if (!(error instanceof S3ServiceException)) return 'storage';
  const status = error.$metadata.httpStatusCode ?? 0;
  if (status >= 500 || status === 401 || status === 403 || status === 408 || status === 429) return 'storage';
  if (STORAGE_WIDE_CODES.has(error.name)) return 'storage';
  return status >= 400 ? 'crash' : 'storage';
}

export interface S3Options {
  bucket: string;
  /** Key prefix such as `prod/` (empty for none), so deployments can share a bucket. */
  prefix: string;
  endpoint: string | undefined;
}

export class S3Storage implements CrashStorage {
  readonly description: string;
  private readonly client: S3Client;

  constructor(private readonly options: S3Options) {
    this.description = `s3://${options.bucket}/${options.prefix}`;
    this.client = new S3Client({
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      region: process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The drainer owns retries (with backoff and dead-lettering), so the SDK must not hide failures.
      maxAttempts: 1,
      // A server that stops answering mid-request must not hold an upload slot forever.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
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
    try {
      await this.client.send(command);
    } catch (error) {
      throw new StorageError(`PUT ${fullKey}: ${describeS3Error(error)}`, classifyS3Error(error), { cause: error });
    }
  }

  async checkReachable(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (error) {
      throw new StorageError(`HEAD bucket ${this.options.bucket}: ${describeS3Error(error)}`, 'storage', { cause: error });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

function describeS3Error(error: unknown): string {
  if (error instanceof S3ServiceException) {
    return `${error.name} (HTTP ${error.$metadata.httpStatusCode ?? '?'}): ${error.message}`;
  }
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code}: ${(error as Error).message}` : String((error as Error).message ?? error);
}
