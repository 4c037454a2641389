/**
 * The operator of the campaign: `scripts/spool-inspect` on the live spool (a real child process,
 * as a person would run it), at the instants the schedule says, whatever else is happening. A
 * purge that succeeds marks its crash as purged; an export is compared with what was sent. Exit
 * codes other than the command's documented ones are problems.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/collector-process.js';
import { seededRandom } from '../helpers/random.js';
import { inspectWith, inspectWithin, type Run } from '../helpers/spool-inspect-cli.js';
import type { OperatorAction } from './schedule.js';
import type { AckedCrash } from './traffic.js';

export interface OperatorRecord {
  at: number;
  action: OperatorAction | 'drain';
  code: number | null;
  /** What it did, e.g. the crash it purged. */
  detail?: string;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export class Operator {
  readonly records: OperatorRecord[] = [];
  readonly problems: string[] = [];
  readonly purged = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly random: () => number;

  constructor(
    seed: number,
    private readonly env: () => Record<string, string>,
    private readonly acked: ReadonlyMap<string, AckedCrash>,
  ) {
    this.random = seededRandom((seed ^ 0x27d4eb2d) >>> 0);
  }

  /** Runs `action` in the background; `settled` waits for all of them. */
  start(action: OperatorAction): void {
    const run = this.act(action).catch((error: Error) => void this.problems.push(`${action}: ${error.message}`));
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  async settled(): Promise<void> {
    await Promise.all([...this.running]);
  }

  private inspect(...args: string[]): Promise<Run> {
    return inspectWith(this.env(), ...args);
  }

  /**
   * Exit codes the command documents for what may happen on a live spool; `why2`: exit 2 is right
   * only with this reason on stderr (2 is also every unexpected error's code).
   */
  private expectCodes(action: OperatorRecord['action'], run: Run, codes: number[], why2?: RegExp): void {
    const expected = run.code !== null && codes.includes(run.code) && (run.code !== 2 || (why2?.test(run.stderr) ?? false));
    if (!expected) this.problems.push(`${action}: exit ${run.code}: ${run.stderr.slice(-400)}`);
  }

  private async pickCrash(state?: 'pending' | 'stored'): Promise<string | undefined> {
    const run = await this.inspect('list', '--json', '--limit', '200', ...(state ? ['--state', state] : []));
    this.expectCodes('list', run, [0]);
    if (run.code !== 0) return undefined;
    const crashes = JSON.parse(run.stdout) as { crash_id: string }[];
    return crashes.length === 0 ? undefined : crashes[Math.floor(this.random() * crashes.length)]!.crash_id;
  }

  private async act(action: OperatorAction): Promise<void> {
    const at = Date.now();
    const record = (code: number | null, detail?: string): void => void this.records.push({ at, action, code, ...(detail ? { detail } : {}) });
    switch (action) {
      case 'summary':
      case 'list': {
        const run = await this.inspect(action, '--json');
        this.expectCodes(action, run, [0]);
        return record(run.code);
      }
      case 'requeue dead': {
        const run = await this.inspect('requeue', '--all-dead', '--json');
        this.expectCodes(action, run, [0]);
        return record(run.code);
      }
      case 'show': {
        const crashId = await this.pickCrash();
        if (!crashId) return record(null, 'spool empty');
        const run = await this.inspect('show', crashId, '--json');
        this.expectCodes(action, run, [0, 1]);
        return record(run.code, crashId);
      }
      case 'export': {
        const crashId = await this.pickCrash();
        if (!crashId) return record(null, 'spool empty');
        const parent = tempDir('campaign-export');
        try {
          const dir = join(parent, 'crash');
          const run = await this.inspect('export', crashId, dir, '--json');
          this.expectCodes(action, run, [0, 1]);
          const sent = this.acked.get(crashId)?.expected;
          if (run.code === 0 && sent) {
            // A stored crash's dumps left the spool: the end checks read them in storage.
            const inStorage = new Set((JSON.parse(run.stdout) as { dumps_in_storage: string[] }).dumps_in_storage);
            for (const [name, data] of Object.entries(sent.dumps)) {
              if (inStorage.has(name)) continue;
              const path = join(dir, `${name}.dmp`);
              if (!existsSync(path)) this.problems.push(`export ${crashId}: ${name}.dmp neither exported nor named as in storage`);
              else if (sha256(readFileSync(path)) !== sha256(data)) this.problems.push(`export ${crashId}: ${name}.dmp differs from what was sent`);
            }
          }
          return record(run.code, crashId);
        } finally {
          rmSync(parent, { recursive: true, force: true });
        }
      }
      case 'purge pending':
      case 'purge stored': {
        const state = action === 'purge pending' ? 'pending' : 'stored';
        const crashId = await this.pickCrash(state);
        if (!crashId) return record(null, `no ${state} crash`);
        const run = await this.inspect('purge', crashId, '--yes', '--json', ...(state === 'stored' ? ['--unannounced'] : []));
        // 1: it left meanwhile (uploaded and announced); 2 (pending only): stored meanwhile, refused without --unannounced.
        this.expectCodes(action, run, state === 'pending' ? [0, 1, 2] : [0, 1], /stored meanwhile/);
        if (run.code === 0 && (JSON.parse(run.stdout) as { purged: string[] }).purged.includes(crashId)) {
          this.purged.add(crashId);
          return record(0, crashId);
        }
        return record(run.code, crashId);
      }
    }
  }

  /** `spool-inspect drain` on the spool of a stopped collector, bounded by `seconds`. */
  async drain(seconds: number): Promise<void> {
    const at = Date.now();
    const run = await inspectWithin(this.env(), (seconds + 30) * 1000, 'drain', '--max-time', `${seconds}s`, '--json');
    if (run.timedOut) {
      this.problems.push(`drain --max-time ${seconds}s still running ${seconds + 30} s later (killed)`);
      this.records.push({ at, action: 'drain', code: null, detail: 'hung' });
      return;
    }
    // 0: emptied; 1: crashes left at --max-time (storage or the queue not answering); 2: a setting
    // refused before anything was touched (e.g. the RabbitMQ queue deleted: no such queue).
    this.expectCodes('drain', run, [0, 1, 2], /nothing was drained/);
    this.records.push({ at, action: 'drain', code: run.code });
  }
}
