/**
 * Where stored crashes are announced: the processing queue Socorro's processor reads (PUBLISH_URL).
 * The message is the crash ID and nothing else. A backend confirms each message it has taken —
 * SQS answers per entry of a batch, RabbitMQ confirms each persistent message (publisher
 * confirms; a message routed to no queue is returned, not taken), Pub/Sub answers a message ID per
 * message — and the announcer deletes a crash from the spool only then (I13). A failure of
 * one message concerns that crash only; a failure of the whole call (refused, timed out, denied,
 * an answer that cannot be read) is a PublishError, and the announcer backs off. The announcer
 * checks each answer against what was sent (announcer.ts); a backend reports what it was told.
 */
export interface PublishResult {
  /** Crash IDs the queue confirmed. */
  published: string[];
  /** Crash IDs the queue answered it did not take, one by one. */
  failed: EntryFailure[];
  /** Entries the queue's answer named that match no message sent: ignored (and logged). */
  unknown: string[];
}

/** One message the queue did not take. */
export interface EntryFailure {
  crashId: string;
  /** What the queue said. */
  error: string;
  /** As metrics count it: refused by the queue, returned as routed nowhere, negatively acknowledged. */
  reason: 'rejected' | 'unroutable' | 'nacked';
  /**
   * `crash`: the queue says this message is at fault (SQS `SenderFault`), so it counts toward the
   * crash's dead letter; `queue`: the queue's own trouble (full, gone, failing), which never does.
   */
  scope: 'crash' | 'queue';
}

/**
 * Why a whole publish failed, as metrics count it: `refused` and `timeout` (nobody answers),
 * `denied` (credentials missing, refused or not allowed), `missing` (no such queue), `malformed` (an
 * answer that could not be read), `error` (anything else the queue answered). `denied` and
 * `missing` are settings to fix; the others, a dependency that does not answer as it should.
 */
export type PublishFailure = 'refused' | 'timeout' | 'denied' | 'missing' | 'error' | 'malformed';

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
  /** Ends connections; requests in flight fail. Resolves within a few seconds, whatever the queue does. */
  close(): Promise<void>;
}
