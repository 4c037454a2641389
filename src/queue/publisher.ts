/**
 * Where stored crashes are announced: the processing queue Socorro's processor reads (PUBLISH_URL).
 * The message is the crash ID and nothing else. A backend confirms each message it has taken —
 * SQS answers per entry of a batch, RabbitMQ confirms each persistent message (publisher
 * confirms) — and the announcer deletes a crash from the spool only then (I13). A failure of
 * one message concerns that crash only; a failure of the whole call (refused, timed out, denied)
 * is a PublishError, and the loop backs off.
 *
 * Pub/Sub (today's Antenna on GCP) is not here: no Pub/Sub server runs on our machines to test one
 * against. It would be a third implementation of this interface.
 */
export interface PublishResult {
  /** Crash IDs the queue confirmed. */
  published: string[];
  /** Crash IDs the queue refused one by one, with its reason; retried. */
  failed: { crashId: string; reason: string }[];
}

/** Why a whole publish failed, as metrics count it. */
export type PublishFailure = 'refused' | 'timeout' | 'denied' | 'error';

export class PublishError extends Error {
  constructor(
    message: string,
    readonly reason: PublishFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CrashPublisher {
  /** The queue for logs and health, without credentials. */
  readonly description: string;
  /** The most crash IDs one `publish` takes. */
  readonly batchSize: number;
  /** Publishes one message per crash ID; resolves once the queue answered for each. Throws PublishError. */
  publish(crashIds: readonly string[]): Promise<PublishResult>;
  /** A cheap real request that fails with PublishError when the queue cannot be used. */
  checkReachable(): Promise<void>;
  /** Ends connections; requests in flight fail. */
  close(): Promise<void>;
}
