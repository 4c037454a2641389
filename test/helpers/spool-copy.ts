import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from './collector-process.js';

/**
 * The spool's files as a kill or a power cut left them. The rollback journal exists only while a
 * new spool switches to WAL mode; a cut then leaves it hot, and the copy needs it to roll back.
 */
const SPOOL_FILES = ['spool.db', 'spool.db-wal', 'spool.db-journal'];

/**
 * Checks a copy of the spool in `dir` (opening the copy replays its WAL or journal, as the next
 * collector would): SQLite's integrity_check findings joined ('ok' when sound), and the crash IDs
 * it holds. The spool itself is not touched.
 */
export function checkSpoolCopy(dir: string): { integrity: string; crashIds: Set<string> } {
  if (!existsSync(join(dir, 'spool.db'))) return { integrity: 'no spool yet', crashIds: new Set() };
  const copy = tempDir('spool-check');
  try {
    for (const file of SPOOL_FILES) if (existsSync(join(dir, file))) copyFileSync(join(dir, file), join(copy, file));
    const db = new Database(join(copy, 'spool.db'));
    try {
      const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((row) => row.integrity_check).join('; ');
      let crashIds = new Set<string>();
      try {
        crashIds = new Set((db.prepare('SELECT crash_id FROM crashes').all() as { crash_id: string }[]).map((row) => row.crash_id));
      } catch {
        // no crashes table: the spool was cut before its schema was durable
      }
      return { integrity, crashIds };
    } finally {
      db.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
