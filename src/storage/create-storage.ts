/** The storage backend STORAGE_URL names, with the collector's timeouts and retries. */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { FileStorage } from './file-storage.js';
import { S3Storage } from './s3-storage.js';
import type { CrashStorage } from './storage.js';

export function createStorage(config: Config, logger: Logger): CrashStorage {
  const target = config.storageUrl;
  return target.kind === 'file'
    ? new FileStorage(target.dir)
    : new S3Storage({
        bucket: target.bucket,
        prefix: target.prefix,
        endpoint: config.s3Endpoint,
        timeouts: {
          connectMs: config.storageConnectTimeoutSeconds * 1000,
          idleMs: config.storageIdleTimeoutSeconds * 1000,
          requestMs: config.storageRequestTimeoutSeconds * 1000,
        },
        maxAttempts: config.storageMaxAttempts,
        logger,
      });
}
