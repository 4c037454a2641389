import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SPOOL_INSPECT = fileURLToPath(new URL('../../scripts/spool-inspect', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `scripts/spool-inspect` as an operator does (the bash wrapper, a real child process). */
export function inspect(...args: string[]): Promise<Run> {
  return inspectWith({}, ...args);
}

/** `inspect` with `env` added to this process's environment (the collector's settings, for `drain`). */
export function inspectWith(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return inspectWithin(env, undefined, ...args);
}

/** `inspectWith`, SIGKILLed after `timeoutMs` (then `timedOut`; the spool lock dies with it). */
export function inspectWithin(env: Record<string, string>, timeoutMs: number | undefined, ...args: string[]): Promise<Run & { timedOut?: true }> {
  return new Promise((resolve, reject) => {
    // detached: its own process group, so the timeout reaches node behind the bash wrapper too
    const child = spawn(SPOOL_INSPECT, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, detached: timeoutMs !== undefined });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              child.kill('SIGKILL');
            }
          }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ...(timedOut ? { timedOut: true as const } : {}) });
    });
  });
}
