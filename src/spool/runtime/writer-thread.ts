/**
 * The spool writer thread: owns the collector's only writing connection, so inserts, deletes,
 * fsyncs and WAL checkpoints never block the HTTP event loop. Every message that arrives while a
 * batch is being committed joins the next batch: one transaction, one fsync (group commit). A
 * reply is sent only after the batch holding the write has committed (I1); a batch of the drain
 * stage's writes alone is not fsynced (applyBatch).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSpoolDatabase, openSpoolDatabase, type Durability } from '../schema.js';
import { mustBeFsynced, SpoolStore, type WriteOp, type WriteResult } from './store.js';

export interface WriterRequest {
  id: number;
  op: WriteOp | { kind: 'close' };
}

export interface WriterReply {
  id: number;
  result?: WriteResult;
  error?: { message: string; code?: string };
}

/** Replies to a batch of writes; or the news that a batch failed as a whole and was retried apart (for the log). */
export type WriterMessage = WriterReply[] | { kind: 'batchFailed'; error: { message: string; code?: string }; writes: number };

const { dir, durability, backstopCheckpointBytes } = workerData as { dir: string; durability: Durability; backstopCheckpointBytes: number };
const port = parentPort!;
const db = openSpoolDatabase(dir, { durability, create: true });
// The checkpointer thread checkpoints when asked (writer.ts); this connection does so itself
// only if the WAL grows past twice that bound (the checkpointer fell behind or failed).
const pageSize = db.pragma('page_size', { simple: true }) as number;
db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.ceil(backstopCheckpointBytes / pageSize))}`);
const store = new SpoolStore(db);
let batch: { id: number; op: WriteOp }[] = [];
let flushScheduled = false;

const errorOf = (error: unknown) => ({ message: (error as Error).message, code: (error as { code?: string }).code });

/** A batch's replies go in one message: the event loop wakes once per batch, not once per crash. */
function send(replies: WriterReply[]): void {
  if (replies.length > 0) port.postMessage(replies satisfies WriterMessage);
}

const replies = (entries: { id: number }[], results: WriteResult[]): WriterReply[] =>
  entries.map(({ id }, index) => ({ id, result: results[index] }));

/**
 * Commits `entries` in one transaction, fsynced (with SPOOL_DURABILITY=full) only when one of them
 * must be (store.ts, `mustBeFsynced`): a batch of the drain stage's writes alone commits without
 * waiting for the disk.
 */
function applyBatch(entries: { op: WriteOp }[]): WriteResult[] {
  const relaxed = durability === 'full' && !entries.some((entry) => mustBeFsynced(entry.op));
  if (relaxed) db.pragma('synchronous = NORMAL');
  try {
    return store.apply(entries.map((entry) => entry.op));
  } finally {
    if (relaxed) db.pragma('synchronous = FULL');
  }
}

function commit(entries: { id: number; op: WriteOp }[]): void {
  try {
    send(replies(entries, applyBatch(entries)));
  } catch (error) {
    send(entries.map(({ id }) => ({ id, error: errorOf(error) })));
  }
}

function flush(): void {
  const entries = batch;
  batch = [];
  flushScheduled = false;
  let results: WriteResult[];
  try {
    results = applyBatch(entries);
  } catch (error) {
    // The batch failed as a whole (e.g. the disk is full). Deletes and failure records still get
    // a transaction of their own, so the drainer can free space while new crashes are refused.
    port.postMessage({ kind: 'batchFailed', error: errorOf(error), writes: entries.length } satisfies WriterMessage);
    const appends = entries.filter((entry) => entry.op.kind === 'append');
    commit(appends);
    commit(entries.filter((entry) => entry.op.kind !== 'append'));
    return;
  }
  send(replies(entries, results));
}

port.on('message', ({ id, op }: WriterRequest) => {
  if (op.kind === 'close') {
    if (batch.length > 0) flush();
    closeSpoolDatabase(db);
    send([{ id }]);
    return;
  }
  batch.push({ id, op });
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
});
send([{ id: 0 }]);
