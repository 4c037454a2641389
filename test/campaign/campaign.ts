/**
 * The campaign: every fault the project knows, at once, on one spool (docs/RELIABILITY.md).
 *
 * A sequence of collector lives (`node dist/main.js`, a real child process on one port and one
 * spool) runs for `minutes`. Each life follows its plan from the seeded schedule (schedule.ts): a
 * storage fault switched on or healed through the fault proxy in front of Ceph RGW, a queue fault
 * on the queue kind whose turn it is, operator commands on the live spool, and an ending — SIGKILL,
 * SIGTERM or (with `powerCuts`) a power cut through the power-loss layer — at a chosen moment:
 * during start-up, right after a commit, as an upload or a publish reaches its proxy, as a WAL
 * checkpoint writes the spool file, or at any instant. Clients of every style and a hostile one
 * post all along (traffic.ts). Between lives a stopped node's spool is sometimes drained by
 * `spool-inspect drain`.
 *
 * At the end every fault is healed, a last collector drains the spool to empty, and checks.ts
 * checks every acknowledged crash in storage and on the queues; report.ts writes what happened.
 */
import { mkdirSync, readFileSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { CollectorProcess, portOutsideEphemeralRange, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { inspectWith } from '../helpers/spool-inspect-cli.js';
import { deletePrefix, s3Settings, s3Target } from '../helpers/stored-crashes.js';
import { PowerLossLayer } from '../power-loss/layer.js';
import { checkCampaign, recordEvidence, type CampaignChecks } from './checks.js';
import { QueueRig, StorageFaults, STORAGE_FAULTS, type FaultSwitch } from './faults.js';
import { Operator } from './operator.js';
import { schedule, type Ending, type LifePlan, type Moment, type QueueKind } from './schedule.js';
import { Traffic } from './traffic.js';
import { writeReport, type CampaignReport } from './report.js';

export interface CampaignOptions {
  minutes: number;
  seed: number;
  /** Where acked.jsonl, report.json, schedule.jsonl, timeline.svg and report.md go. */
  out: string;
  /** Another bucket (whole, prefix ""); default: a fresh prefix in the test bucket. */
  bucket?: string;
  powerCuts?: boolean;
  queues?: QueueKind[];
  /** Posting clients besides the hostile one. Default 3. */
  clients?: number;
  /** Keep the crashes in storage after a clean run (a memstore RGW holds them in RAM). Default false. */
  keepObjects?: boolean;
  progress?: (line: string) => void;
}

export interface LifeRecord {
  index: number;
  queue: QueueKind;
  startedAt: number;
  readyAt: number | null;
  ending: Ending;
  moment: Moment;
  /** The moment's trigger came (false: it timed out and the ending came anyway). */
  triggered: boolean;
  /** SIGTERM: seconds from the signal to the exit. */
  stopSeconds?: number;
  endedAt: number;
  exit: { code: number | null; signal: string | null };
  /** How the life ended when not by the campaign's hand, or how its ending went wrong. */
  unexpected?: string;
}

export interface Sample {
  at: number;
  pending: number;
  stored: number;
  dead: number;
}

export interface CampaignRun {
  options: CampaignOptions;
  startedAt: number;
  endedAt: number;
  prefix: string;
  bucket: string;
  plans: LifePlan[];
  lives: LifeRecord[];
  samples: Sample[];
  switches: FaultSwitch[];
  storageFaults: Record<string, number>;
  queueFaults: Record<string, number>;
  traffic: Traffic;
  operator: Operator;
  commit: string;
  checks: CampaignChecks;
}

const TRIGGER_TIMEOUT_MS = 4000;
/** A request unanswered this long while the collector listens hangs (a kill would hide it: lives last seconds). */
const HANG_MS = 6000;
/** A collector not listening this long after its start hangs in start-up. */
const READY_TIMEOUT_MS = 60_000;
const SHUTDOWN_DEADLINE_SECONDS = 2;
/** How much longer a collector past its SIGTERM limit is watched, to report how late it was (the shipped orchestrator grace is 20 s past the deadline). */
const LATE_EXIT_WAIT_MS = 20_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const COLLECTOR_ENV = {
  DRAIN_RETRY_BASE_SECONDS: '0.1',
  DRAIN_RETRY_MAX_SECONDS: '1',
  STORAGE_CONNECT_TIMEOUT_SECONDS: '1',
  STORAGE_IDLE_TIMEOUT_SECONDS: '2',
  STORAGE_REQUEST_TIMEOUT_SECONDS: '5',
  PUBLISH_CONNECT_TIMEOUT_SECONDS: '1',
  PUBLISH_TIMEOUT_SECONDS: '2',
  SHUTDOWN_DEADLINE_SECONDS: String(SHUTDOWN_DEADLINE_SECONDS),
  // Checkpoints every 2 MB of crashes instead of 64 MB, so that kills land in them.
  SPOOL_CHECKPOINT_BYTES: '2m',
  // Every start loads the dedup index (~20 µs an entry): with the default 7 days, a campaign's tens
  // of thousands of crashes slowed each of its ~1,000 starts by up to a second. Retries come at once.
  DEDUP_WINDOW: '10m',
};

/** Waits (up to 10 s) until `collector` holds the spool's lock (its pid in `collector.pid`); whether it came to that. */
async function holdsSpool(spoolDir: string, collector: CollectorProcess): Promise<boolean> {
  const pid = `${collector.child.pid}`;
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(5)) {
    if (collector.child.exitCode !== null || collector.child.signalCode !== null) return false;
    try {
      if (readFileSync(join(spoolDir, 'collector.pid'), 'utf8').trim() === pid) return true;
    } catch {
      // not written yet
    }
  }
  return false;
}

/** Counts by state, read from the spool file as any reader may while the collector runs. */
function spoolCounts(spoolDir: string): Omit<Sample, 'at'> | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(join(spoolDir, 'spool.db'), { readonly: true, fileMustExist: true, timeout: 200 });
    const rows = db.prepare('SELECT state, COUNT(*) AS n FROM crashes GROUP BY state').all() as { state: string; n: number }[];
    const count = (state: string) => rows.find((row) => row.state === state)?.n ?? 0;
    return { pending: count('pending'), stored: count('stored'), dead: count('dead') };
  } catch {
    return undefined; // not created yet, being recovered, or the power is off
  } finally {
    db?.close();
  }
}

/** The commit the campaign runs, with `-dirty` when the work tree differs from it. */
function commitOf(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=40'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export async function runCampaign(options: CampaignOptions): Promise<{ run: CampaignRun; report: CampaignReport }> {
  const progress = options.progress ?? (() => undefined);
  const startedAt = Date.now();
  const commit = commitOf();
  const endAt = startedAt + options.minutes * 60_000;
  const queues = options.queues ?? ['sqs', 'amqp', 'pubsub'];
  mkdirSync(options.out, { recursive: true });

  const target = options.bucket ? s3Target('campaign', { bucket: options.bucket, prefix: '' }) : s3Target('campaign');
  const storage = await StorageFaults.start(s3Settings().endpoint, await portOutsideEphemeralRange());
  const switches = storage.switches;
  const queueFaults: Record<string, number> = {};
  const rigs = new Map<QueueKind, QueueRig>();
  for (const kind of queues) rigs.set(kind, await QueueRig.start(kind, target.reader, switches, queueFaults, await portOutsideEphemeralRange()));

  let layer = options.powerCuts ? await PowerLossLayer.mount({ backing: tempDir('campaign-backing'), seed: options.seed }) : undefined;
  const spoolDir = layer ? layer.mountpoint : tempDir('campaign-spool');
  const tokensFile = join(tempDir('campaign-tokens'), 'tokens.json');
  const token = `campaign-client-${options.seed.toString(16)}-token`;
  const stageToken = `campaign-stage-${options.seed.toString(16)}-token`;
  writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token, name: 'campaign-clients' }, { token: stageToken, name: 'campaign-stage', may_set_crash_id: true }] }));
  const port = await portOutsideEphemeralRange();
  let kind = queues[0]!;
  const env = () => ({
    SPOOL_DIR: spoolDir,
    ...target.env,
    S3_ENDPOINT: storage.proxy.url,
    UPLOAD_TOKENS: tokensFile,
    ...COLLECTOR_ENV,
    ...(layer ? { SPOOL_DURABILITY: 'full' } : {}),
    ...rigs.get(kind)!.publishEnv(),
  });

  const dumps = [...loadFixtureDumps().values()];
  let life = 0;
  /** From the moment a kill is decided until the next collector listens: requests may be cut or refused. */
  let down = true;
  const traffic = new Traffic({
    port,
    seed: options.seed,
    clients: options.clients ?? 3,
    token,
    stageToken,
    dumps: layer ? dumps.filter((dump) => dump.length < 120_000) : dumps,
    smallDumps: dumps.filter((dump) => dump.length < 60_000),
    life: () => life,
    down: () => down,
  });
  const operator = new Operator(options.seed, env, traffic.acked);
  /** Per crash ID, what the collectors logged of it ("life N: msg"): the evidence for a lost or unannounced crash. */
  const evidence = new Map<string, string[]>();
  const plans: LifePlan[] = [];
  const lives: LifeRecord[] = [];
  const samples: Sample[] = [];
  /** Problems of the campaign's own machinery (a fault that could not be switched). */
  const rigProblems: string[] = [];
  let current: CollectorProcess | undefined;
  const sampler = setInterval(() => {
    const counts = spoolCounts(spoolDir);
    if (counts) samples.push({ at: Date.now(), ...counts });
  }, 1000);

  const trigger = async (moment: Moment, collector: CollectorProcess): Promise<boolean> => {
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    const rig = rigs.get(kind)!;
    try {
      const fired = new Promise<boolean>((resolve) => {
        switch (moment) {
          case 'any time':
          case 'start-up':
            return resolve(true);
          case 'ack':
            return void collector.nextLog((line) => line.msg === 'crash accepted', TRIGGER_TIMEOUT_MS).then((line) => resolve(line !== undefined));
          case 'upload':
            storage.proxy.onRequest = (method) => method === 'PUT' && resolve(true);
            return;
          case 'publish':
            if (rig.rig.http) rig.rig.http.onRequest = (method) => method === 'POST' && resolve(true);
            else void collector.nextLog((line) => line.msg === 'crash published', TRIGGER_TIMEOUT_MS).then((line) => resolve(line !== undefined));
            return;
          case 'checkpoint':
            watcher = watch(spoolDir, (_event, file) => file === 'spool.db' && resolve(true));
            watcher.on('error', () => undefined);
            return;
        }
      });
      return await Promise.race([fired, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), TRIGGER_TIMEOUT_MS)))]);
    } finally {
      clearTimeout(timer);
      storage.proxy.onRequest = undefined;
      if (rig.rig.http) rig.rig.http.onRequest = undefined;
      watcher?.close();
    }
  };

  const endLife = async (plan: LifePlan, collector: CollectorProcess, record: LifeRecord): Promise<void> => {
    const alive = collector.child.exitCode === null && collector.child.signalCode === null;
    if (alive && record.readyAt !== null) traffic.reportHangs(HANG_MS);
    life += 1; // before the signal: requests cut from now on are the kill's
    down = true;
    if (!alive) {
      const exit = await collector.exited;
      record.exit = exit;
      record.unexpected = `ended by itself before its ${plan.ending}: ${collector.stderr.slice(-600)}`;
      return;
    }
    if (plan.ending === 'SIGTERM') {
      // A collector that listens must be gone within the deadline (plus the exit itself); one still
      // starting finishes its start-up first (or, before its handlers exist, dies of the signal).
      const ready = record.readyAt !== null;
      const limitSeconds = ready ? SHUTDOWN_DEADLINE_SECONDS + 3 : READY_TIMEOUT_MS / 1000;
      const signalled = Date.now();
      collector.kill('SIGTERM');
      const exit = await Promise.race([collector.exited, sleep(limitSeconds * 1000).then(() => undefined)]);
      record.stopSeconds = (Date.now() - signalled) / 1000;
      if (!exit) {
        // Still a failure, but say how late it was and where it stood, before the orchestrator's SIGKILL would come.
        const late = await Promise.race([collector.exited, sleep(LATE_EXIT_WAIT_MS).then(() => undefined)]);
        const stood = collector.logs.slice(-3).map((line) => String(line.msg)).join(' / ');
        const outcome = late ? `exit ${late.code ?? late.signal} after ${((Date.now() - signalled) / 1000).toFixed(1)} s` : `no exit in ${LATE_EXIT_WAIT_MS / 1000} s more`;
        record.unexpected = `still running ${limitSeconds} s after SIGTERM (deadline ${SHUTDOWN_DEADLINE_SECONDS} s): ${outcome}; last logged: ${stood}`;
        if (!late) await collector.stop();
      } else if (exit.code !== 0 && !(exit.signal === 'SIGTERM' && record.readyAt === null)) {
        record.unexpected = `exit ${exit.code ?? exit.signal} after SIGTERM: ${collector.stderr.slice(-600)}`;
      }
    } else {
      if (plan.ending === 'power cut') await layer!.cut(plan.index % 2 === 0 ? 'drop' : 'torn');
      collector.kill('SIGKILL');
      const exit = await collector.exited;
      // After a cut its writes fail (EIO): a collector that stops on its own then is the machine going dark.
      if (exit.signal !== 'SIGKILL' && plan.ending !== 'power cut') record.unexpected = `exit ${exit.code ?? exit.signal} before the SIGKILL: ${collector.stderr.slice(-600)}`;
    }
    record.exit = await collector.exited;
  };

  const lifePlans = schedule(options.seed, {
    queues,
    storageFaults: Object.keys(STORAGE_FAULTS),
    queueFaults: Object.fromEntries(queues.map((queue) => [queue, [...rigs.get(queue)!.faults.keys()]])) as Record<QueueKind, string[]>,
    powerCuts: layer !== undefined,
  });
  let checks: CampaignChecks;
  try {
    traffic.start();
    try {
      while (Date.now() < endAt) {
        const plan = lifePlans.next().value as LifePlan;
        plans.push(plan);
        const rigFailed = (error: Error) => void rigProblems.push(`life ${plan.index}: switching a queue fault failed: ${error.message}`);
        if (plan.queue !== kind) {
          await rigs.get(kind)!.apply({ to: 'heal' }).catch(rigFailed);
          kind = plan.queue;
        }
        await rigs.get(kind)!.apply(plan.queueFault).catch(rigFailed);
        await storage.apply(plan.storageFault);

        const collector = CollectorProcess.spawn(env(), port);
        current = collector;
        const record: LifeRecord = {
          index: plan.index,
          queue: kind,
          startedAt: Date.now(),
          readyAt: null,
          ending: plan.ending,
          moment: plan.moment,
          triggered: false,
          endedAt: 0,
          exit: { code: null, signal: null },
        };
        lives.push(record);
        const listening = collector.nextLog((line) => line.msg === 'collector started', READY_TIMEOUT_MS).then((line) => {
          if (line === undefined) return false;
          record.readyAt = Date.now();
          if (life === plan.index) down = false;
          return true;
        });
        const timers: NodeJS.Timeout[] = [];
        if (plan.moment === 'start-up') {
          // From the moment this process holds the spool's lock: opening, checking, recovering.
          record.triggered = await holdsSpool(spoolDir, collector);
          await Promise.race([sleep(plan.settleMs), collector.exited]);
        } else {
          const ready = await Promise.race([listening, collector.exited.then(() => false)]);
          if (!ready && collector.child.exitCode === null && collector.child.signalCode === null) {
            record.unexpected = `not listening ${READY_TIMEOUT_MS / 1000} s after its start`;
          }
          if (ready) {
            for (const { atMs, action } of plan.operator) timers.push(setTimeout(() => operator.start(action), atMs));
            if (plan.storageMidLife) {
              const change = plan.storageMidLife.change;
              timers.push(setTimeout(() => void storage.apply(change), plan.storageMidLife.atMs));  // switches queue up in order
            }
            await Promise.race([sleep(plan.settleMs), collector.exited]);
            record.triggered = await trigger(plan.moment, collector);
            await sleep(plan.afterTriggerMs);
          }
        }
        for (const timer of timers) clearTimeout(timer);
        if (plan.ending === 'power cut') await operator.settled();
        const failedStart = record.unexpected;
        await endLife(plan, collector, record);
        if (failedStart) record.unexpected = failedStart + (record.unexpected ? `; then ${record.unexpected}` : '');
        record.endedAt = Date.now();
        recordEvidence(evidence, `life ${plan.index} (${kind})`, collector.logs);
        if (record.unexpected) progress(`life ${plan.index}: ${record.unexpected}`);
        if (layer && plan.ending === 'power cut') {
          // The machine comes back: the same backing directory, under the same mount point.
          await layer.unmount();
          layer = await PowerLossLayer.mount({ backing: layer.backing, mountpoint: spoolDir, seed: options.seed + plan.index });
        }
        if (plan.drainSeconds !== undefined) await operator.drain(plan.drainSeconds);
        if ((plan.index + 1) % 25 === 0) {
          progress(`life ${plan.index + 1}: ${traffic.acked.size} acknowledged, ${operator.purged.size} purged, ${Math.round((endAt - Date.now()) / 1000)} s left`);
        }
      }
    } finally {
      await traffic.stop();
      await operator.settled();
      clearInterval(sampler);
      if (current && current.child.exitCode === null && current.child.signalCode === null) await current.stop();
    }

    progress(`healing every fault; a last collector drains the spool`);
    await storage.healAll();
    for (const rig of rigs.values()) await rig.apply({ to: 'heal' }).catch((error: Error) => void rigProblems.push(`healing ${rig.kind} at the end failed: ${error.message}`));
    checks = await checkCampaign({
      env: env(),
      port,
      spoolDir,
      spoolCounts: () => spoolCounts(spoolDir),
      requeueDead: () => inspectWith(env(), 'requeue', '--all-dead', '--json'),
      traffic,
      operator,
      lives,
      consumers: new Map([...rigs].map(([queue, rig]) => [queue, rig.rig.consumer])),
      finalQueue: kind,
      reader: target.reader,
      samples,
      evidence,
      progress,
    });
    checks.problems.push(...rigProblems, ...storage.problems);
  } finally {
    for (const rig of rigs.values()) await rig.close().catch(() => undefined);
    await storage.close();
    if (layer) await layer.unmount();
  }
  const run: CampaignRun = {
    options: { ...options, progress: undefined },
    startedAt,
    endedAt: Date.now(),
    prefix: target.prefix,
    bucket: target.bucket,
    plans,
    lives,
    samples,
    switches,
    storageFaults: storage.injected,
    queueFaults,
    traffic,
    operator,
    commit,
    checks,
  };
  const report = await writeReport(run, target.reader);
  if (report.problems.length === 0) {
    if (!options.keepObjects && target.prefix !== '') {
      await deletePrefix(target.client, target.env['STORAGE_URL']!).catch((error: Error) => progress(`could not delete the crashes in storage: ${error.message}`));
    }
    rmSync(layer ? layer.backing : spoolDir, { recursive: true, force: true });
  }
  target.client.destroy();
  return { run, report };
}
