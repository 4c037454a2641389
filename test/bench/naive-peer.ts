/**
 * The naive peer the collector is compared with: the obvious Hono handler. It buffers the body,
 * gunzips it in one piece, parses it with the platform's `Request.formData()`, and stores the
 * annotations and dumps in better-sqlite3 (WAL, synchronous=FULL, default page size) in one
 * transaction per crash before answering `CrashID=bp-<uuid>`. No limits, no streaming, no drainer.
 * Run: `PORT=8002 NAIVE_DB_DIR=/tmp/x node --import tsx test/bench/naive-peer.ts` (prints `listening`).
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { readFormReport } from './form-report.js';
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';


const dir = process.env['NAIVE_DB_DIR'] ?? './naive-spool';
mkdirSync(dir, { recursive: true });
const db = new Database(join(dir, 'naive.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS crashes (crash_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, annotations TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS dumps (id INTEGER PRIMARY KEY, crash_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL);
`);
const insertCrash = db.prepare('INSERT INTO crashes (crash_id, received_at, annotations) VALUES (?, ?, ?)');
const insertDump = db.prepare('INSERT INTO dumps (crash_id, name, data) VALUES (?, ?, ?)');
const store = db.transaction((crashId: string, annotations: Record<string, string>, dumps: [string, Buffer][]) => {
  insertCrash.run(crashId, Date.now(), JSON.stringify(annotations));
  for (const [name, data] of dumps) insertDump.run(crashId, name, data);
});

const app = new Hono();
app.post('/submit', async (c) => {
  const { annotations, dumps } = await readFormReport(c);
  const crashId = randomUUID();
  store(crashId, annotations, dumps);
  return c.text(`CrashID=bp-${crashId}\n`);
});

serve({ fetch: app.fetch, port: Number(process.env['PORT'] ?? 8002), hostname: process.env['HOST'] ?? '127.0.0.1' }, () => {
  process.stdout.write('listening\n');
});
