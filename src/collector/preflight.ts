/**
 * `node dist/main.js check` (`npm run check`): what a start would meet, tried for real before the
 * first crash arrives. One line per check; exit 0 when all pass, 2 when a setting is wrong (the
 * configuration, a spool directory that cannot be used, a port taken, a bucket that does not
 * exist, credentials refused, a wrong region), 1 when a dependency does not answer (storage or
 * the queue unreachable). It changes nothing a collector keeps: the spool gets one probe write in
 * its `meta` table, storage one probe object that is deleted again.
 */
import { accessSync, constants, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createPublisher } from '../queue/create-publisher.js';
import { PublishError, type PublishFailure } from '../queue/publisher.js';
import { closeInspectedSpool, openSpoolForInspection } from '../spool/operator/inspection.js';
import { lockSpool, SpoolLocked } from '../spool/lock.js';
import { SPOOL_FILE } from '../spool/schema.js';
import { createStorage } from '../storage/create-storage.js';
import { StorageCheckFailed } from '../storage/storage.js';

type Outcome = { ok: true; detail: string } | { ok: false; detail: string; kind: 'setting' | 'unreachable' };

const pass = (detail: string): Outcome => ({ ok: true, detail });
const setting = (detail: string): Outcome => ({ ok: false, detail, kind: 'setting' });

function checkSpool(dir: string): Outcome {
  const where = resolve(dir);
  if (!existsSync(where)) {
    let ancestor = dirname(where);
    while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
    try {
      accessSync(ancestor, constants.W_OK);
    } catch (error) {
      return setting(`SPOOL_DIR ${where} does not exist and cannot be created in ${ancestor} (${(error as NodeJS.ErrnoException).code})`);
    }
    return pass(`${where} does not exist yet; it will be created`);
  }
  if (!statSync(where).isDirectory()) return setting(`SPOOL_DIR ${where} is not a directory`);
  let running = '';
  try {
    lockSpool(where).release();
  } catch (error) {
    if (!(error instanceof SpoolLocked)) return setting(`SPOOL_DIR: ${(error as Error).message}`);
    running = '; a collector runs on it now';
  }
  if (!existsSync(join(where, SPOOL_FILE))) {
    try {
      rmSync(mkdtempSync(join(where, 'check-')), { recursive: true });
    } catch (error) {
      return setting(`SPOOL_DIR ${where}: cannot write there (${(error as NodeJS.ErrnoException).code})`);
    }
    return pass(`${where}: writable, no spool yet (it is created at start)${running}`);
  }
  try {
    // Next to a running collector, only read: its spool is its own (and may be of an older schema).
    const spool = openSpoolForInspection(where, running ? 'read' : 'write');
    try {
      if (!running) spool.db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('check', ?)`).run(new Date().toISOString());
      const counts = spool.db.prepare(`SELECT state, COUNT(*) AS crashes FROM crashes GROUP BY state`).all() as { state: string; crashes: number }[];
      const listed = counts.map((row) => `${row.crashes} ${row.state}`).join(', ') || 'empty';
      return pass(`${join(where, SPOOL_FILE)}: ${running ? 'readable' : 'a probe committed'}; ${listed}${running}`);
    } finally {
      closeInspectedSpool(spool);
    }
  } catch (error) {
    return setting(`SPOOL_DIR: ${(error as Error).message}`);
  }
}

function checkPort(name: string, port: number, host: string): Promise<Outcome> {
  return new Promise((settle) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      settle(setting(`${name} ${host}:${port}: cannot listen (${error.code}); ${error.code === 'EADDRINUSE' ? 'in use (a collector running already?)' : 'check HOST and the port'}`)),
    );
    server.listen(port, host, () => server.close(() => settle(pass(`${host}:${port} is free`))));
  });
}

async function checkStorage(config: Config, logger: Logger): Promise<Outcome> {
  const storage = createStorage(config, logger);
  try {
    return pass(await storage.checkReadWrite());
  } catch (error) {
    if (error instanceof StorageCheckFailed) return { ok: false, detail: error.message, kind: error.kind };
    return { ok: false, detail: (error as Error).message, kind: 'unreachable' };
  } finally {
    storage.destroy();
  }
}

async function checkQueue(config: Config, logger: Logger): Promise<Outcome | undefined> {
  const publisher = createPublisher(config, logger);
  if (!publisher) return undefined;
  try {
    await publisher.checkReachable();
    return pass(`${publisher.description}: the queue answers`);
  } catch (error) {
    const reason = error instanceof PublishError ? error.reason : 'error';
    const detail = `${publisher.description}: ${(error as Error).message}; ${QUEUE_HINTS[reason]}`;
    return { ok: false, detail, kind: reason === 'denied' || reason === 'missing' ? 'setting' : 'unreachable' };
  } finally {
    await publisher.close();
  }
}

/** What to change, by why the queue check failed. */
const QUEUE_HINTS: Record<PublishFailure, string> = {
  denied: 'the credentials are missing, refused or not allowed to publish (PUBLISH_URL; AWS_* for SQS, GOOGLE_APPLICATION_CREDENTIALS or the workload identity for Pub/Sub)',
  missing: "the queue does not exist: it is created on the processor's side (crashspool never declares it), or PUBLISH_URL names another",
  refused: 'nobody answers there: check the host and port in PUBLISH_URL and the network',
  timeout: 'no answer in time: check the network, or PUBLISH_CONNECT_TIMEOUT_SECONDS and PUBLISH_TIMEOUT_SECONDS',
  malformed: 'the answer could not be read: is PUBLISH_URL a queue of the kind it names?',
  error: 'the queue answered with an error',
};

/** Runs every check, writes one line each, and returns the exit code. */
export async function preflight(config: Config, logger: Logger, write: (line: string) => void): Promise<0 | 1 | 2> {
  const outcomes: [string, Outcome][] = [['configuration', pass('every setting is valid')]];
  outcomes.push(['spool', checkSpool(config.spoolDir)]);
  outcomes.push(['port', await checkPort('PORT', config.port, config.host)]);
  if (config.metricsPort !== undefined) outcomes.push(['metrics port', await checkPort('METRICS_PORT', config.metricsPort, config.host)]);
  outcomes.push(['storage', await checkStorage(config, logger)]);
  const queue = await checkQueue(config, logger);
  if (queue) outcomes.push(['queue', queue]);
  for (const [name, outcome] of outcomes) write(`${outcome.ok ? 'ok  ' : 'FAIL'}  ${name.padEnd(13)} ${outcome.detail}`);
  if (outcomes.some(([, outcome]) => !outcome.ok && outcome.kind === 'setting')) return 2;
  return outcomes.some(([, outcome]) => !outcome.ok) ? 1 : 0;
}
