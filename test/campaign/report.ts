/**
 * What a campaign writes, so that others can check it without trusting it:
 * - `acked.jsonl`: every acknowledged crash (ID, client style, SHA-256 of each dump as sent,
 *   purged or not): with the bucket and prefix of report.json, anyone can read them back;
 * - `report.json`: the figures;
 * - `schedule.jsonl`: the plan of every life, as the seed gave it (compare two runs of a seed);
 * - `lives.jsonl`: how each life went (start, ready, end, exit, whether its moment's trigger came);
 * - `unaccounted.jsonl` (only if any): every lost or unannounced crash, with what the collectors
 *   logged of it;
 * - `timeline.svg`: acknowledgements per second, spool depth by state, and every fault and kill,
 *   drawn by Vega-Lite (rendered to SVG by Vega, headless);
 * - `report.md`: the readable report around the picture.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import type { ObjectReader } from '../helpers/stored-crashes.js';
import type { CampaignRun } from './campaign.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
};

export interface CampaignReport {
  seed: number;
  commit: string;
  bucket: string;
  prefix: string;
  minutes: number;
  seconds: number;
  power_cuts: boolean;
  kills: number;
  kills_by_ending: Record<string, number>;
  kills_by_moment: Record<string, number>;
  /** Kills whose moment's trigger came (the rest came at the trigger's timeout). */
  kills_on_trigger: number;
  storage_faults: Record<string, number>;
  queue_faults: Record<string, number>;
  operator_actions: number;
  operator_by_action: Record<string, number>;
  lives: number;
  acked: number;
  purged: { total: number; whole: number; absent: number };
  lost: number;
  unannounced: number;
  announced_duplicates: number;
  announced_unacknowledged: number;
  answers: Record<string, number>;
  hostile: { sent: number; accepted: number; repeats: number };
  retries_after_ack: { sent: number; same_id: number; new_id: number };
  final_drain: CampaignRun['checks']['finalDrain'];
  final_exit: CampaignRun['checks']['finalExit'];
  problems: string[];
}

export function summarise(run: CampaignRun): CampaignReport {
  const { checks, traffic, operator, lives } = run;
  const ended = lives.filter((life) => !life.unexpected?.startsWith('ended by itself'));
  return {
    seed: run.options.seed,
    commit: run.commit,
    bucket: run.bucket,
    prefix: run.prefix,
    minutes: run.options.minutes,
    seconds: Math.round((run.endedAt - run.startedAt) / 1000),
    power_cuts: run.options.powerCuts === true,
    kills: ended.length,
    kills_by_ending: countBy(ended, (life) => life.ending),
    kills_by_moment: countBy(ended, (life) => life.moment),
    kills_on_trigger: ended.filter((life) => life.triggered).length,
    storage_faults: run.storageFaults,
    queue_faults: run.queueFaults,
    operator_actions: operator.records.length,
    operator_by_action: countBy(operator.records, (record) => `${record.action} → ${record.code === null ? record.detail ?? 'no exit' : `exit ${record.code}`}`),
    lives: lives.length,
    acked: checks.acked,
    purged: checks.purged,
    lost: Object.keys(checks.lost).length,
    unannounced: checks.unannounced.length,
    announced_duplicates: checks.announced.duplicates,
    announced_unacknowledged: checks.announced.unacknowledged,
    answers: traffic.answers,
    hostile: { sent: traffic.hostileSent, accepted: [...traffic.acked.values()].filter((crash) => crash.style === 'hostile').length, repeats: traffic.hostileRepeats },
    retries_after_ack: { sent: traffic.retries.afterAck, same_id: traffic.retries.sameIdAfterAck, new_id: traffic.retries.newIdAfterAck.length },
    final_drain: checks.finalDrain,
    final_exit: checks.finalExit,
    problems: checks.problems,
  };
}

/** One line per acknowledged crash; a hostile report's dumps as the collector recorded them at receipt. */
async function ackedLines(run: CampaignRun, reader: ObjectReader): Promise<string> {
  const lines: string[] = [];
  for (const crash of run.traffic.acked.values()) {
    let dumps: Record<string, string> = {};
    if (crash.expected) {
      dumps = Object.fromEntries(Object.entries(crash.expected.dumps).map(([name, data]) => [name, sha256(data)]));
    } else {
      const raw = await reader.get(rawCrashKey(crash.crashId)).catch(() => undefined);
      if (raw) dumps = (JSON.parse(raw.toString('utf8')) as { metadata?: { dump_checksums?: Record<string, string> } }).metadata?.dump_checksums ?? {};
    }
    lines.push(JSON.stringify({ crash_id: crash.crashId, style: crash.style, dumps, purged: crash.purged }));
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The timeline as a Vega-Lite spec: faults and kills as lanes, then acks/s and spool depth. */
export function timelineSpec(run: CampaignRun): TopLevelSpec {
  const t = (at: number) => Math.round((at - run.startedAt) / 100) / 10;
  const end = t(run.endedAt);
  const perSecond = new Map<number, number>();
  for (const at of run.traffic.ackTimes) perSecond.set(Math.floor(t(at)), (perSecond.get(Math.floor(t(at))) ?? 0) + 1);
  const acks = Array.from({ length: Math.ceil(end) }, (_, second) => ({ t: second, acks: perSecond.get(second) ?? 0 }));
  const depth = run.samples.flatMap((sample) => (['pending', 'stored', 'dead'] as const).map((state) => ({ t: t(sample.at), state, crashes: sample[state] })));
  const faults: { t: number; t2: number; lane: string; layer: string }[] = [];
  const open = new Map<string, { t: number; fault: string }>();
  for (const change of [...run.switches].sort((a, b) => a.at - b.at)) {
    const current = open.get(change.layer);
    if (current) faults.push({ t: current.t, t2: t(change.at), lane: `${change.layer}: ${current.fault}`, layer: change.layer });
    open.delete(change.layer);
    if (change.fault !== null) open.set(change.layer, { t: t(change.at), fault: change.fault });
  }
  for (const [layer, current] of open) faults.push({ t: current.t, t2: end, lane: `${layer}: ${current.fault}`, layer });
  const kills = run.lives.map((life) => ({ t: t(life.endedAt), lane: `kill: ${life.ending}`, moment: life.moment }));
  const shading = { data: { values: faults }, mark: { type: 'rect', opacity: 0.12 }, encoding: { x: { field: 't', type: 'quantitative' }, x2: { field: 't2' }, color: { field: 'layer', type: 'nominal', title: 'fault on' } } } as const;
  const x = { field: 't', type: 'quantitative', title: 'seconds since the start', scale: { domain: [0, end] } } as const;
  const lane = { field: 'lane', type: 'nominal', title: null, sort: 'ascending', axis: { labelLimit: 320 } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `crashspool campaign, seed ${run.options.seed}: ${run.lives.length} lives, ${run.checks.acked} crashes acknowledged`,
    resolve: { scale: { color: 'independent' } },
    vconcat: [
      {
        width: 1000,
        height: { step: 11 },
        title: 'faults switched on (bars) and kills (ticks)',
        resolve: { scale: { color: 'independent' } },
        layer: [
          { data: { values: faults }, mark: { type: 'bar', height: 8 }, encoding: { y: lane, x, x2: { field: 't2' }, color: { field: 'layer', type: 'nominal', title: 'fault layer' } } },
          { data: { values: kills }, mark: { type: 'tick', thickness: 1, opacity: 0.6 }, encoding: { y: lane, x, color: { field: 'moment', type: 'nominal', title: 'kill moment', scale: { scheme: 'dark2' } } } },
        ],
      },
      {
        width: 1000,
        height: 160,
        title: 'crashes acknowledged per second',
        layer: [shading, { data: { values: acks }, mark: { type: 'line', strokeWidth: 1 }, encoding: { x, y: { field: 'acks', type: 'quantitative', title: 'acks/s' } } }],
      },
      {
        width: 1000,
        height: 160,
        title: 'spool depth by state (sampled every second)',
        layer: [
          shading,
          { data: { values: depth }, mark: { type: 'line', strokeWidth: 1 }, encoding: { x, y: { field: 'crashes', type: 'quantitative', title: 'crashes' }, stroke: { field: 'state', type: 'nominal', title: 'state' } } },
        ],
      },
    ],
  } as TopLevelSpec;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function table(rows: Record<string, number>, left: string, right = 'times'): string {
  const entries = Object.entries(rows).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return '(none)\n';
  return [`| ${left} | ${right} |`, '| --- | ---: |', ...entries.map(([name, count]) => `| ${name} | ${count} |`)].join('\n') + '\n';
}

export function markdown(report: CampaignReport): string {
  const verdict = report.problems.length === 0 ? '**clean**: every check passed' : `**${report.problems.length} problems** (listed below)`;
  return `# Campaign report: seed ${report.seed}

Commit \`${report.commit}\`, ${report.minutes} minutes asked, ${report.seconds} s run; storage \`s3://${report.bucket}/${report.prefix}\`.
Replay: \`scripts/campaign --minutes ${report.minutes} --seed ${report.seed}${report.power_cuts ? ' --power-cuts' : ''}\`.

Verdict: ${verdict}.

| figure | value |
| --- | ---: |
| collector lives | ${report.lives} |
| kills (SIGKILL, SIGTERM, power cuts) | ${report.kills} |
| kills whose moment's trigger came | ${report.kills_on_trigger} |
| crashes acknowledged | ${report.acked} |
| lost (acknowledged, not purged, not in storage as sent) | ${report.lost} |
| acknowledged, not purged, never announced | ${report.unannounced} |
| purged by the operator: whole in storage / absent | ${report.purged.whole} / ${report.purged.absent} |
| announcements repeated (at least once: allowed) | ${report.announced_duplicates} |
| announced, never acknowledged (answer cut by a kill) | ${report.announced_unacknowledged} |
| hostile requests sent / accepted / repeats of an earlier one | ${report.hostile.sent} / ${report.hostile.accepted} / ${report.hostile.repeats} |
| retries after an ack: same crash ID / new crash ID | ${report.retries_after_ack.same_id} / ${report.retries_after_ack.new_id} |
| operator actions | ${report.operator_actions} |
| last collector: spool empty after heal | ${report.final_drain.drained ? `yes, ${report.final_drain.seconds.toFixed(1)} s` : 'NO'} |
| consumers waited for after that (until each acknowledged crash was read, or none new came for 60 s) | ${report.final_drain.consumersSeconds.toFixed(1)} s |
| last collector: exit on SIGTERM | ${report.final_exit ? report.final_exit.code ?? report.final_exit.signal : 'none'} |

![timeline](timeline.svg)

## Kills
${table(report.kills_by_ending, 'ending')}
${table(report.kills_by_moment, 'moment')}
## Storage faults
${table(report.storage_faults, 'fault')}
## Queue faults
${table(report.queue_faults, 'fault')}
## Operator actions
${table(report.operator_by_action, 'action → outcome')}
## Answers
${table(report.answers, 'answer', 'requests')}
## Problems
${report.problems.length === 0 ? '(none)\n' : report.problems.map((problem) => `- ${problem}`).join('\n') + '\n'}`;
}

export async function writeReport(run: CampaignRun, reader: ObjectReader): Promise<CampaignReport> {
  const report = summarise(run);
  const dir = run.options.out;
  writeFileSync(join(dir, 'acked.jsonl'), await ackedLines(run, reader));
  writeFileSync(join(dir, 'schedule.jsonl'), run.plans.map((plan) => JSON.stringify(plan)).join('\n') + '\n');
  writeFileSync(join(dir, 'lives.jsonl'), run.lives.map((life) => JSON.stringify(life)).join('\n') + '\n');
  if (run.checks.unaccounted.length > 0) writeFileSync(join(dir, 'unaccounted.jsonl'), run.checks.unaccounted.map((entry) => JSON.stringify(entry)).join('\n') + '\n');
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'timeline.svg'), await renderSvg(timelineSpec(run)));
  writeFileSync(join(dir, 'report.md'), markdown(report));
  return report;
}
