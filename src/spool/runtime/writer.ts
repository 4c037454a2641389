/**
 * The collector's side of the spool writer thread (writer-thread.ts): every write goes
 * there as a message and its promise settles when the thread replies after the commit. If the
 * thread dies, every pending write fails and `onFatal` is told; what was committed is safe.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Crash } from '../../crash.js';
import { crashBytes } from '../../crash.js';
import { SpoolFull, type SpoolUsage } from './usage.js';
import { type DedupKey, type WriteOp, type WriteResult } from './store.js';
import { checkpointDue, CHECKPOINT_INTERVAL_MS, QUIET_CHECKPOINT_MS, REMOVE_WAL_BYTES, type CheckpointPolicy } from './checkpoint-policy.js';
import { crashToStore } from './crash-encoding.js';
import { type Durability } from '../schema.js';
import type { WriterMessage, WriterReply, WriterRequest } from './writer-thread.js';
import type { BackgroundErrors } from '../../background-errors.js';
import type { CrashRef, FailureRecord } from '../crash-rows.js';
import type { CrashAppender, DrainedCrashes, SpoolProbe } from './ports.js';
import type { CheckpointerData, CheckpointerMessage, CheckpointerRequest } from './checkpointer-thread.js';

export class SpoolWriteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Starts the thread whose module `name` lies beside this one. */
function startThread(name: string, options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), options);
  // Run from source (in-process tests under tsx): Node 20 does not hand tsx's loader on to a
  // thread, so the thread registers it before loading its module.
  const source = JSON.stringify(new URL(`./${name}.ts`, import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${source}); })`, { ...options, eval: true });
}

const wasFound = (result: WriteResult): boolean => result !== undefined && 'found' in result && result.found;

export interface SpoolWriterOptions {
  dir: string;
  durability: Durability;
  /** The spool's byte count, which appends add to and removes subtract from. */
  usage: SpoolUsage;
  /** Free pages inside the database file, read on the caller's own connection. */
  reusableBytes: () => number;
  /** The writer thread died: every pending write has failed and nothing more can be committed. */
  onFatal: (error: Error) => void;
  checkpoints: CheckpointPolicy;
  /**
   * Where failures the threads survive are reported: a background checkpoint that failed (the
   * writer's own checkpoints still bound the WAL, at twice `checkpoints.everyBytes`), a batch that
   * failed as a whole and was retried write by write.
   */
  errors?: Pick<BackgroundErrors, 'report'>;
}

export class SpoolWriter implements CrashAppender, DrainedCrashes, SpoolProbe {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (result: WriteResult) => void; reject: (error: Error) => void }>();
  /** The last failed crash append, cleared by the next success: for health checks. */
  private lastFailure: { at: number; error: Error } | undefined;

  private checkpointer: Worker | undefined;
  /** Bytes committed since the checkpointer was last asked to checkpoint. */
  walBytes = 0;
  appendedBytes = 0;
  removedBytes = 0;
  private lastWriteAt = 0;
  private quietCheck: NodeJS.Timeout | undefined;
  private checkpointEveryBytes = Number.POSITIVE_INFINITY;

  private constructor(
    private readonly worker: Worker,
    private readonly usage: SpoolUsage,
    /** Free pages inside the database file, read on the caller's own connection. */
    private readonly reusableBytes: () => number,
    errors: Pick<BackgroundErrors, 'report'> | undefined,
  ) {
    worker.on('message', (message: WriterMessage) => {
      if (Array.isArray(message)) for (const reply of message) this.settle(reply);
      else errors?.report('spool_write_batch', Object.assign(new Error(message.error.message), { code: message.error.code }), { writes: message.writes });
    });
  }

  private settle(reply: WriterReply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.error) waiter.reject(new SpoolWriteError(reply.error.message, reply.error.code));
    else waiter.resolve(reply.result);
  }

  /** Starts the writer thread on the spool, and the checkpointer thread once the writer has its connection open; resolves when both are ready. */
  static async start(options: SpoolWriterOptions): Promise<SpoolWriter> {
    const { dir, durability, usage, reusableBytes, onFatal, checkpoints, errors } = options;
    const worker = startThread('writer-thread', {
      workerData: { dir, durability, backstopCheckpointBytes: 2 * checkpoints.everyBytes },
    });
    const writer = await new Promise<SpoolWriter>((resolve, reject) => {
      const failedToStart = (error: Error) => reject(error);
      worker.once('error', failedToStart);
      worker.once('message', () => {
        worker.off('error', failedToStart);
        const started = new SpoolWriter(worker, usage, reusableBytes, errors);
        const die = (error: Error) => {
          for (const waiter of started.pending.values()) waiter.reject(error);
          started.pending.clear();
          onFatal(error);
        };
        worker.on('error', die);
        worker.on('exit', (code) => die(new Error(`spool writer thread exited (${code})`)));
        resolve(started);
      });
    });
    try {
      writer.checkpointer = await startCheckpointer(
        { dir, durability, intervalMs: CHECKPOINT_INTERVAL_MS, eagerBelowFreeBytes: checkpoints.eagerBelowFreeBytes },
        (message) => errors?.report('spool_checkpoint', new Error(message)),
      );
    } catch (error) {
      await writer.close();
      throw error;
    }
    writer.checkpointEveryBytes = checkpoints.everyBytes;
    writer.quietCheck = setInterval(() => {
      if (writer.walBytes > 0 && Date.now() - writer.lastWriteAt > QUIET_CHECKPOINT_MS) writer.askForCheckpoint();
    }, QUIET_CHECKPOINT_MS / 4);
    writer.quietCheck.unref();
    return writer;
  }

  /**
   * Counts what was committed since the last checkpoint (`walBytes`, as the policy counts it; the
   * crash bytes appended and removed); past the policy's bound, the checkpointer copies the WAL.
   */
  private committed(walBytes: number, appended: number, removed: number): void {
    this.lastWriteAt = Date.now();
    this.walBytes += walBytes;
    this.appendedBytes += appended;
    this.removedBytes += removed;
    if (checkpointDue(this, this.checkpointEveryBytes)) this.askForCheckpoint();
  }

  private askForCheckpoint(): void {
    this.walBytes = 0;
    this.appendedBytes = 0;
    this.removedBytes = 0;
    this.checkpointer?.postMessage('checkpoint' satisfies CheckpointerRequest);
  }

  private send(op: WriterRequest['op'], transfer: ArrayBuffer[] = []): Promise<WriteResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op } satisfies WriterRequest, transfer);
    });
  }

  /**
   * Resolves once the crash is committed (durably, per SPOOL_DURABILITY), or with the earlier
   * crash ID when `dedup` finds the report was stored before (then nothing is stored); rejects
   * with SpoolFull or the SQLite error.
   */
  async append(crash: Crash, dedup?: DedupKey): Promise<{ duplicateOf?: string }> {
    const rawCrashJson = JSON.stringify(crash.rawCrash);
    // A crash counts at its size as uploaded, however it is kept: SPOOL_MAX_BYTES and
    // DRAIN_INFLIGHT_MAX_BYTES bound what the crashes are, not what they take on disk.
    const bytes = crashBytes(crash, rawCrashJson);
    try {
      this.usage.admit(bytes, this.reusableBytes);
    } catch (error) {
      this.lastFailure = { at: Date.now(), error: error as Error };
      throw error;
    }
    const stored = crashToStore(crash);
    const op: WriteOp = {
      kind: 'append',
      crashId: crash.crashId,
      receivedAt: crash.receivedAt,
      rawCrashJson,
      dumpNamesJson: JSON.stringify(crash.dumps.map((dump) => dump.name)),
      bytes,
      dumps: stored.dumps,
      ...(stored.sentGzip ? { sentGzip: stored.sentGzip } : {}),
      ...(dedup ? { dedup } : {}),
    };
    let result: WriteResult;
    try {
      result = await this.send(op, stored.transfer);
    } catch (error) {
      this.usage.appendSettled(bytes, false);
      this.lastFailure = { at: Date.now(), error: error as Error };
      throw error;
    }
    const duplicateOf = result && 'duplicateOf' in result ? result.duplicateOf : undefined;
    this.usage.appendSettled(bytes, duplicateOf === undefined);
    if (duplicateOf === undefined) this.committed(stored.storedBytes + Buffer.byteLength(rawCrashJson), bytes, 0);
    this.lastFailure = undefined;
    return duplicateOf === undefined ? {} : { duplicateOf };
  }

  /** Removes up to `limit` dedup index entries created before `before`; resolves with how many. */
  async expireDedup(before: number, limit: number): Promise<number> {
    const result = await this.send({ kind: 'expireDedup', before, limit });
    return result && 'expired' in result ? result.expired : 0;
  }

  /**
   * The last append failure, unless it was the spool's byte limit and the refused crash would fit
   * now (space freed by the drainer or by another process): then it is history, not the state.
   */
  get currentFailure(): { at: number; error: Error } | undefined {
    const failure = this.lastFailure;
    const error = failure?.error;
    if (error instanceof SpoolFull && error.code === 'SPOOL_FULL' && this.usage.bytes + error.bytes <= this.usage.limits.maxBytes) return undefined;
    return failure;
  }

  /**
   * I2: only for a crash whose every object storage has confirmed. Resolves false when the crash
   * had left the spool already (an operator's purge): nothing was deleted (I7).
   */
  async remove(crash: CrashRef & { bytes: number }): Promise<boolean> {
    this.usage.removeStarted(crash.bytes);
    let removed = false;
    try {
      removed = wasFound(await this.send({ kind: 'remove', crash: { seq: crash.seq, crashId: crash.crashId } }));
      this.committed(REMOVE_WAL_BYTES, 0, removed ? crash.bytes : 0);
    } finally {
      // A crash purged by another process is counted until the usage is re-read (errs high).
      this.usage.removeSettled(crash.bytes, removed);
    }
    return removed;
  }

  /**
   * I2: storage confirmed every object of the crash. It becomes `stored`: its dumps leave the
   * spool now (their bytes are freed), its row waits for the processing queue. False when it had
   * left the spool already (I7).
   */
  async markStored(crash: CrashRef & { bytes: number; rawCrashBytes: number }): Promise<boolean> {
    const freed = Math.max(0, crash.bytes - crash.rawCrashBytes);
    this.usage.removeStarted(freed);
    let found = false;
    try {
      found = wasFound(await this.send({ kind: 'stored', crash: { seq: crash.seq, crashId: crash.crashId }, storedAt: Date.now(), bytes: crash.rawCrashBytes }));
      this.committed(REMOVE_WAL_BYTES, 0, found ? freed : 0);
    } finally {
      this.usage.removeSettled(freed, found);
    }
    return found;
  }

  /** Records a failed upload of the crash; resolves false when it had left the spool already (I7). */
  async recordFailure(crash: CrashRef, failure: FailureRecord): Promise<boolean> {
    return wasFound(await this.send({ kind: 'failure', crash: { seq: crash.seq, crashId: crash.crashId }, failure }));
  }

  /** Sets (or, with null, deletes) one of the spool's own values (`meta`); resolves once committed. */
  async setMeta(key: string, value: string | null): Promise<void> {
    await this.send({ kind: 'meta', key, value });
  }

  /** A real (tiny) durable write: proves the spool can still commit. */
  async probe(): Promise<void> {
    await this.send({ kind: 'probe' });
  }

  /**
   * Ends both threads at once, without committing what is queued (those writes reject): what a
   * kill does to them. What was committed stays; for recovery tests.
   */
  async abort(): Promise<void> {
    clearInterval(this.quietCheck);
    await this.checkpointer?.terminate();
    this.checkpointer = undefined;
    await this.worker.terminate();
  }

  /** Stops the checkpointer; commits what is queued, checkpoints and closes the connection, ends the thread. */
  async close(): Promise<void> {
    clearInterval(this.quietCheck);
    if (this.checkpointer) await stopCheckpointer(this.checkpointer);
    this.checkpointer = undefined;
    await this.send({ kind: 'close' });
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

function startCheckpointer(data: CheckpointerData, onError: (message: string) => void): Promise<Worker> {
  const worker = startThread('checkpointer-thread', { workerData: data });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (message: CheckpointerMessage) => {
      if (message.kind === 'ready') {
        worker.off('error', reject);
        // A dead checkpointer costs speed, not data: the writer checkpoints by itself.
        worker.on('error', (error) => onError(`checkpointer thread died: ${error.message}`));
        resolve(worker);
      } else if (message.kind === 'error') {
        onError(message.message);
      }
    });
  });
}

async function stopCheckpointer(worker: Worker): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    worker.on('message', (message: CheckpointerMessage) => {
      if (message.kind === 'closed') resolve();
    });
    worker.once('exit', () => resolve());
  });
  worker.postMessage('close' satisfies CheckpointerRequest);
  await closed;
  await worker.terminate();
}
