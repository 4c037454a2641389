/**
 * Where crashes go after the spool. Backends implement two methods; the drainer decides what a
 * failure means from its scope:
 * - `crash`: only this crash can never succeed (e.g. an object rejected as too large); counts
 *   toward the dead-letter limit.
 * - `storage`: a failure of the backend, not of this crash (a 5xx, a timeout, endpoint down, bad
 *   credentials); never dead-letters anything, the drainer retries.
 */
export type FailureScope = 'crash' | 'storage';

export class StorageError extends Error {
  constructor(
    message: string,
    readonly scope: FailureScope,
    options?: {
      cause?: unknown;
      /**
       * This failure alone shows the whole storage is unusable right now (connection refused, no
       * such bucket, bad credentials), so the drainer pauses at once. Other `storage` failures
       * (a 5xx, a timeout) may concern one request: only many of them in a row pause it.
       */
      outage?: boolean;
      /** The storage answered (with an error status); false when it did not answer at all. */
      answered?: boolean;
    },
  ) {
    super(message, options);
    this.outage = options?.outage ?? false;
    this.answered = options?.answered ?? false;
  }

  readonly outage: boolean;
  readonly answered: boolean;
}

export interface CrashStorage {
  /** Human-readable target for logs, e.g. `s3://bucket/prefix`. */
  readonly description: string;
  /**
   * Stores `body` under `key` (a layout key such as `v1/dump/<id>`), overwriting any object there.
   * Resolves only once the backend has confirmed the object is stored. Throws StorageError.
   * `sha256`: the hex SHA-256 `body` had when it was received, where known (dumps); a backend
   * that can have the server verify it does, so bytes changed in the spool are never stored.
   */
  put(key: string, body: Buffer, contentType: string, sha256?: string): Promise<void>;
  /** A cheap real request that fails with StorageError when the backend is unreachable. */
  checkReachable(): Promise<void>;
  /**
   * For `crashspool check`: writes, reads back and deletes a probe object beside the layout
   * (`crashspool-check/<random>`). Resolves with what was checked; throws StorageCheckFailed.
   */
  checkReadWrite(): Promise<string>;
  /** Ends every request in flight (they fail) and frees connections: at the shutdown deadline. */
  destroy(): void;
}

/** Why `check` could not use the storage: a setting is wrong (bucket, credentials, region, path), or it does not answer. */
export class StorageCheckFailed extends Error {
  constructor(
    message: string,
    readonly kind: 'setting' | 'unreachable',
  ) {
    super(message);
  }
}
