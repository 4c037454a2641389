/**
 * Runs the real collector (`node dist/main.js`) as a child process, the way an operator would,
 * and reads its JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `crashspool-${name}-`));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free port below the kernel's ephemeral range, for a server that stops and starts again on one
 * port many times (a campaign's ~1,000 lives): inside the range a client's outgoing connection may
 * take the port while nothing listens (even connect to itself), and the next listen fails.
 */
export async function portOutsideEphemeralRange(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the usual range
  }
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * Math.max(1, low - 10_000));
    if (await canListen(port)) return port;
  }
}

export class CollectorProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const raw of lines) {
        if (raw.trim() === '') continue;
        let line: LogLine;
        try {
          line = JSON.parse(raw) as LogLine;
        } catch {
          line = { msg: raw, unparsed: true };
        }
        this.logs.push(line);
        this.waiters = this.waiters.filter((waiter) => {
          if (!waiter.predicate(line)) return true;
          waiter.resolve(line);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Starts a collector and resolves once it listens. `env` adds to (and overrides) the defaults;
   * `prefix` is a command that runs it (e.g. in a memory cgroup: MemoryCgroup.prefix()).
   */
  static async start(env: Record<string, string>, port?: number, prefix: string[] = [], readyTimeoutMs = 30_000): Promise<CollectorProcess> {
    const collector = CollectorProcess.spawn(env, port ?? (await freePort()), prefix);
    const started = collector.waitForLog((line) => line.msg === 'collector started', readyTimeoutMs);
    const outcome = await Promise.race([started.then(() => 'started'), collector.exited.then(() => 'exited')]).catch(async (error: unknown) => {
      await collector.stop();
      throw error;
    });
    if (outcome === 'exited') {
      throw new Error(`collector exited at start: ${collector.stderr || JSON.stringify(collector.logs)}`);
    }
    return collector;
  }

  /** Starts a collector without waiting for it to listen (to kill it during its start-up). */
  static spawn(env: Record<string, string>, port: number, prefix: string[] = []): CollectorProcess {
    const [command, ...args] = [...prefix, process.execPath, MAIN];
    const child = spawn(command!, args, {
      env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new CollectorProcess(child, port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; last: ${JSON.stringify(this.logs.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** The next log line (from now on, not one seen already) that `predicate` accepts, or undefined after `timeoutMs`. */
  nextLog(predicate: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== entry);
        resolve(undefined);
      }, timeoutMs);
      const entry = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(entry);
    });
  }

  countLogs(msg: string): number {
    return this.logs.filter((line) => line.msg === msg).length;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGKILL and wait for the exit: for cleanup in `after` hooks. */
  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }
}
