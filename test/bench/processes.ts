/**
 * Child processes of the benchmark other than the collector (which runs through
 * test/helpers/collector-process.ts), and what the kernel tells about any of them:
 * peak RSS (/proc/<pid>/status) and bytes written to storage (/proc/<pid>/io).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/collector-process.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

function statusKb(pid: number, field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined; // the process is gone
  }
}

/**
 * Samples a process's resident set every `everyMs`. The peak is the larger of the sampled VmRSS
 * and the kernel's own high-water mark VmHWM (which catches spikes between samples).
 */
export class RssSampler {
  private peakKb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const rss = statusKb(this.pid, 'VmRSS') ?? 0;
    const hwm = statusKb(this.pid, 'VmHWM') ?? 0;
    this.peakKb = Math.max(this.peakKb, rss, hwm);
  }

  /** Peak RSS in MiB so far. */
  get peakMiB(): number {
    return this.peakKb / 1024;
  }

  /** Takes a last sample (call before the process exits) and stops sampling. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peakMiB;
  }
}

/** Bytes the process caused to be written to storage (`write_bytes`: pages it dirtied), or NaN. */
export function writtenBytes(pid: number): number {
  try {
    const match = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * A TypeScript server file run with `node --import tsx`, listening on PORT (127.0.0.1); it prints
 * `listening` on stdout once ready.
 */
export class ServerProcess {
  stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly exited: Promise<unknown>,
  ) {}

  static async start(file: string, env: Record<string, string> = {}): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(file, import.meta.url))], {
      cwd: REPO,
      env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const server = new ServerProcess(child, port, exited);
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (server.stderr += text));
    let out = '';
    const ready = new Promise<void>((resolve) => {
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        out += text;
        if (out.includes('listening')) resolve();
      });
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref());
    const outcome = await Promise.race([ready.then(() => 'ready'), exited.then(() => 'exited'), timeout]);
    if (outcome !== 'ready') {
      child.kill('SIGKILL');
      throw new Error(`${file} did not start (${outcome}): ${server.stderr}`);
    }
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs on. */
const USER_HZ = 100;

/** CPU seconds (user + system, all threads) the process has used so far, or NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) in parentheses; utime and stime are
    // fields 14 and 15 of the line, i.e. 12th and 13th after the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

/** CPU time of the whole machine so far: busy (not idle, not iowait) and total, in seconds summed over cores. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: (total - idle) / USER_HZ, total: total / USER_HZ };
}

/**
 * CPU use over a window, in percent of one core (above 100: several threads or processes busy):
 * of the measured process, of this process (the load generator, when it is not the measured one),
 * and of everything else on the machine (the S3 server, and any other work that skews the numbers).
 */
export class CpuWindow {
  private process = Number.NaN;
  private self = Number.NaN;
  private machine = { busy: Number.NaN, total: Number.NaN };
  private wall = 0;
  processPercent = Number.NaN;
  loadGeneratorPercent = Number.NaN;
  otherPercent = Number.NaN;
  /** Busy share of all cores, percent. */
  machinePercent = Number.NaN;

  constructor(private readonly pid: number) {}

  private selfSeconds(): number {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  }

  start(): void {
    this.process = cpuSeconds(this.pid);
    this.self = this.selfSeconds();
    this.machine = machineCpu();
    this.wall = performance.now();
  }

  end(): void {
    const seconds = (performance.now() - this.wall) / 1000;
    const machine = machineCpu();
    const measured = cpuSeconds(this.pid) - this.process;
    const generator = this.pid === process.pid ? 0 : this.selfSeconds() - this.self;
    const busy = machine.busy - this.machine.busy;
    this.processPercent = (measured / seconds) * 100;
    this.loadGeneratorPercent = this.pid === process.pid ? Number.NaN : (generator / seconds) * 100;
    this.otherPercent = (Math.max(0, busy - measured - generator) / seconds) * 100;
    this.machinePercent = (busy / (machine.total - this.machine.total)) * 100;
  }
}
