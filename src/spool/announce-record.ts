/**
 * What the spool remembers of announcing (its `meta` table), so that a configuration slip cannot
 * make crashes leave it unannounced (I13): the queue its crashes are announced on, recorded by the
 * first start with PUBLISH_URL; and, once an operator let announcing go (PUBLISH_URL=none), the
 * highest row number received while it announced — those crashes are counted as they leave
 * unannounced (I6). Row numbers are never reused (I7), so that mark names exactly those crashes.
 */
import type Database from 'better-sqlite3';

export const ANNOUNCE_TARGET_KEY = 'announce_target';
export const UNANNOUNCED_THROUGH_KEY = 'unannounced_through_seq';

export interface AnnounceRecord {
  /** The queue (described without credentials) this spool's crashes are announced on. */
  target: string | undefined;
  /** Crashes up to this row number were received while announcing and leave without it. */
  unannouncedThrough: number | undefined;
}

export function readAnnounceRecord(db: Database.Database): AnnounceRecord {
  const hasMeta = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).get() !== undefined;
  if (!hasMeta) return { target: undefined, unannouncedThrough: undefined };
  const value = (key: string) => db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  const through = value(UNANNOUNCED_THROUGH_KEY);
  return { target: value(ANNOUNCE_TARGET_KEY), unannouncedThrough: through === undefined ? undefined : Number(through) };
}

/** The highest row number ever given to a crash (0 for none), what UNANNOUNCED_THROUGH_KEY marks. */
export function lastCrashSeq(db: Database.Database): number {
  return (db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'crashes'`).pluck().get() as number | undefined) ?? 0;
}
