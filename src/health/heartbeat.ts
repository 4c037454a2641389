/**
 * `/__heartbeat__`: named checks an operator's monitoring can alert on before crashes are lost.
 * With PUBLISH_URL, `queue` is probed the way storage is (in the background, reported with its
 * age) and also fails while the announcer is paused after the queue failed as a whole, or while a
 * stored crash has waited for the queue longer than HEALTH_MAX_AGE_SECONDS.
 * 200 when all pass, 503 with every check's details otherwise. It answers within a second whatever
 * storage does: the storage check is a real request made in the background every few seconds, and
 * the heartbeat reports its last result with its age (or `timeout` while one hangs) — it never waits
 * on storage. The spool check makes a real (tiny) durable write, bounded in time too, so a full disk
 * shows here before the next crash is refused. Dead-lettered crashes are shown, not failed on: the
 * alert rules decide.
 */
import type { Drainer } from '../drain/drainer.js';
import type { SpoolReader, SpoolStats } from '../spool/runtime/reader.js';
import type { SpoolProbe } from '../spool/runtime/ports.js';
import { spoolFailureReason } from '../spool/runtime/errors.js';
import type { CrashStorage } from '../storage/storage.js';
import type { CrashPublisher } from '../queue/publisher.js';
import type { Announcer } from '../drain/announcer.js';
import type { BackgroundErrors } from '../background-errors.js';
import { within } from '../within.js';
import { dockerflowHeartbeat, type Check, type DockerflowHeartbeat } from './dockerflow.js';

export interface HealthOptions {
  /** How often storage (and the queue) are probed in the background, whether or not anyone reads. */
  storageCheckIntervalMs: number;
  maxPending: number;
  maxAgeSeconds: number;
  drainStallSeconds: number;
}

export interface HeartbeatDeps {
  spool: SpoolReader;
  writer: SpoolProbe;
  storage: CrashStorage;
  drainer: Drainer;
  /** The processing queue and its announcer, when PUBLISH_URL is set. */
  queue?: { publisher: CrashPublisher; announcer: Announcer };
  startedAt: number;
  options: HealthOptions;
  /** Where a probe timer's own failure is reported (I11). */
  errors: Pick<BackgroundErrors, 'guard'>;
}

const ageSeconds = (since: number | null | undefined, now: number) => (since == null ? 0 : Math.round((now - since) / 1000));

/** A check that has not answered within this long is reported as `timeout`. */
const CHECK_TIMEOUT_MS = 800;

/** What a background probe asks: storage or the queue. */
interface Probed {
  readonly description: string;
  checkReachable(): Promise<void>;
}

/**
 * A dependency's reachability, probed in the background on a timer of its own, every `intervalMs`
 * whether or not anyone reads it (so the `*_up` gauges and the heartbeat are never older than one
 * interval), at most one probe in flight. Reading it never waits.
 */
class BackgroundProbe {
  private last: { at: number; error?: string } | undefined;
  private inFlightSince: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly target: Probed,
    private readonly intervalMs: number,
    guard: BackgroundErrors['guard'],
  ) {
    this.refresh(Date.now());
    this.timer = setInterval(
      guard('health_probe', () => this.refresh(Date.now())),
      intervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  check(now: number): Check {
    const target = this.target.description;
    const hanging = this.inFlightSince !== undefined && now - this.inFlightSince > CHECK_TIMEOUT_MS;
    if (hanging) {
      return { ok: false, target, error: 'timeout', waiting_seconds: ageSeconds(this.inFlightSince, now), last_error: this.last?.error ?? null };
    }
    if (!this.last) return { ok: true, target, checked: 'in progress' };
    const age = ageSeconds(this.last.at, now);
    return this.last.error === undefined ? { ok: true, target, checked_seconds_ago: age } : { ok: false, target, error: this.last.error, checked_seconds_ago: age };
  }

  private refresh(now: number): void {
    if (this.inFlightSince !== undefined) return;
    this.inFlightSince = now;
    Promise.resolve()
      .then(() => this.target.checkReachable())
      .then(
      () => this.settle(undefined),
      (error: Error) => this.settle(error.message),
    );
  }

  private settle(error: string | undefined): void {
    this.inFlightSince = undefined;
    this.last = error === undefined ? { at: Date.now() } : { at: Date.now(), error };
  }
}

export function createHeartbeat({ spool, writer, storage, drainer, queue, startedAt, options, errors }: HeartbeatDeps) {
  const guard = errors.guard.bind(errors);
  const storageProbe = new BackgroundProbe(storage, options.storageCheckIntervalMs, guard);
  const queueProbe = queue && new BackgroundProbe(queue.publisher, options.storageCheckIntervalMs, guard);

  // Both a probe and the last real commit: a full disk may still take the probe's few bytes
  // while refusing every crash.
  const checkWritable = async (): Promise<Check> => {
    try {
      if ((await within(writer.probe(), CHECK_TIMEOUT_MS)) === 'timeout') {
        return { ok: false, reason: 'timeout', error: `no commit within ${CHECK_TIMEOUT_MS} ms` };
      }
    } catch (error) {
      return { ok: false, reason: spoolFailureReason(error), error: (error as Error).message };
    }
    const failure = writer.currentFailure;
    if (failure) {
      return { ok: false, reason: spoolFailureReason(failure.error), error: failure.error.message, since: new Date(failure.at).toISOString() };
    }
    return { ok: true };
  };

  const spoolChecks = (stats: SpoolStats, now: number): Record<string, Check> => {
    const oldest = ageSeconds(stats.oldestPendingAt, now);
    const lastUpload = drainer.lastSuccessAt ?? startedAt;
    const stalled = stats.pending > 0 && now - lastUpload > options.drainStallSeconds * 1000;
    return {
      spool_depth: { ok: stats.pending <= options.maxPending, pending: stats.pending, dead: stats.dead, bytes: stats.bytes, max_pending: options.maxPending },
      spool_age: { ok: oldest <= options.maxAgeSeconds, oldest_pending_age_seconds: oldest, max_age_seconds: options.maxAgeSeconds },
      drainer: {
        ok: !stalled && !drainer.paused,
        uploading: drainer.uploading,
        concurrency_limit: drainer.concurrencyLimit,
        uploaded: drainer.uploaded,
        paused_after_failure: drainer.paused,
        retrying: drainer.retrying,
        recent_failure_ratio: Math.round(drainer.recentFailureRatio * 100) / 100,
        seconds_since_last_upload: drainer.lastSuccessAt === undefined ? null : ageSeconds(drainer.lastSuccessAt, now),
        ...(stalled ? { error: `crashes pending and none uploaded for over ${options.drainStallSeconds} s` } : {}),
      },
      dead_letter: {
        ok: true,
        count: stats.dead,
        oldest_age_seconds: stats.oldestDeadAt === null ? null : ageSeconds(stats.oldestDeadAt, now),
        ...(stats.dead > 0 ? { warning: `${stats.dead} crashes dead-lettered: see scripts/spool-inspect summary` } : {}),
      },
    };
  };

  /**
   * Whether storage and the queue answer right now, for the `*_up` gauges: the last background
   * probe succeeded and no loop is paused after a failure of the whole dependency.
   */
  const dependenciesUp = (now = Date.now()): { storage: boolean; queue?: boolean } => ({
    storage: storageProbe.check(now).ok && !drainer.paused,
    ...(queue && queueProbe ? { queue: queueProbe.check(now).ok && !queue.announcer.paused } : {}),
  });

  const check = async (): Promise<{ httpStatus: 200 | 503; body: DockerflowHeartbeat }> => {
    const now = Date.now();
    const checks: Record<string, Check> = { spool_writable: await checkWritable() };
    try {
      Object.assign(checks, spoolChecks(spool.stats(), now));
    } catch (error) {
      checks['spool_depth'] = { ok: false, error: (error as Error).message };
    }
    checks['storage'] = storageProbe.check(now);
    if (queue && queueProbe) {
      const probe = queueProbe.check(now);
      let waiting: Record<string, unknown> = {};
      let waitedTooLong = false;
      try {
        const stats = spool.stats();
        const oldest = ageSeconds(stats.oldestStoredAt, now);
        // A queue that answers probes and takes others may still refuse some crashes, forever.
        waitedTooLong = oldest > options.maxAgeSeconds;
        waiting = { waiting: stats.stored, oldest_waiting_seconds: oldest, max_age_seconds: options.maxAgeSeconds };
      } catch {
        // the spool checks above say what is wrong with reading the spool
      }
      checks['queue'] = {
        ...probe,
        ok: probe.ok && !queue.announcer.paused && !waitedTooLong,
        paused_after_failure: queue.announcer.paused,
        published: queue.announcer.published,
        ...waiting,
        ...(waitedTooLong && probe.ok ? { error: `a stored crash has waited for the queue over ${options.maxAgeSeconds} s` } : {}),
      };
    }
    return dockerflowHeartbeat(checks);
  };
  /** Stops the background probes (shutdown). */
  const stop = () => {
    storageProbe.stop();
    queueProbe?.stop();
  };
  return { check, dependenciesUp, stop };
}
