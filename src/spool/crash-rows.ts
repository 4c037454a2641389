/**
 * The one place a spooled crash is deleted, marked stored or has a failure recorded (I7,
 * docs/INVARIANTS.md). Each names the crash by its row number *and* its crash ID, so a caller holding a crash that has
 * left the spool meanwhile (an operator's purge during its upload) changes nothing rather than
 * another crash; each says whether the crash was there. Row numbers are never reused besides
 * (`AUTOINCREMENT`, schema.ts), so dumps and bodies, found by row number, belong to that crash.
 */
import type Database from 'better-sqlite3';
import type { CrashState } from './schema.js';

/** What names one spooled crash. */
export interface CrashRef {
  seq: number;
  crashId: string;
}

export interface FailureRecord {
  /**
   * What failed: the upload of a pending crash, or the announcement of a stored one. The record
   * is written only while the crash is still in that state, so a late failure cannot move a crash
   * back (a stored crash to pending would upload it again from dumps it no longer has).
   */
  stage: 'upload' | 'announce';
  attempts: number;
  nextAttemptAt: number;
  error: string;
  dead: boolean;
}

export class CrashRows {
  private readonly deleteCrash: Database.Statement;
  private readonly deleteDumps: Database.Statement;
  private readonly deleteBody: Database.Statement;
  private readonly failure: Database.Statement;
  private readonly stored: Database.Statement;

  constructor(db: Database.Database) {
    this.deleteCrash = db.prepare('DELETE FROM crashes WHERE seq = ? AND crash_id = ?');
    this.deleteDumps = db.prepare('DELETE FROM dumps WHERE seq = ?');
    this.deleteBody = db.prepare('DELETE FROM bodies WHERE seq = ?');
    this.failure = db.prepare('UPDATE crashes SET attempts = ?, next_attempt_at = ?, last_error = ?, state = ? WHERE seq = ? AND crash_id = ? AND state = ?');
    this.stored = db.prepare(
      `UPDATE crashes SET state = 'stored', stored_at = ?, bytes = ?, attempts = 0, next_attempt_at = 0, last_error = NULL
       WHERE seq = ? AND crash_id = ? AND state = 'pending'`,
    );
  }

  /** Deletes the crash with its dumps and body (run it inside the caller's transaction); false when it was not there. */
  delete(crash: CrashRef): boolean {
    if (this.deleteCrash.run(crash.seq, crash.crashId).changes === 0) return false;
    this.deleteDumps.run(crash.seq);
    this.deleteBody.run(crash.seq);
    return true;
  }

  /**
   * Storage confirmed every object of the pending crash: it becomes `stored` (its ID waits for the
   * processing queue), its dumps and body are deleted, and it counts `bytes` (its row) from now
   * on. False when it was not there (or not pending).
   */
  markStored(crash: CrashRef, storedAt: number, bytes: number): boolean {
    if (this.stored.run(storedAt, bytes, crash.seq, crash.crashId).changes === 0) return false;
    this.deleteDumps.run(crash.seq);
    this.deleteBody.run(crash.seq);
    return true;
  }

  /**
   * Records a failed upload or announcement (dead: moved to the dead-letter state, where a stored
   * crash keeps its `stored_at`); false when the crash was not there, or no longer in the state
   * the failure is of.
   */
  recordFailure(crash: CrashRef, failure: FailureRecord): boolean {
    const from: CrashState = failure.stage === 'upload' ? 'pending' : 'stored';
    const to: CrashState = failure.dead ? 'dead' : from;
    return this.failure.run(failure.attempts, failure.nextAttemptAt, failure.error, to, crash.seq, crash.crashId, from).changes > 0;
  }
}
