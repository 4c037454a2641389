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
  return new Promise((resolve, reject) => {
    const child = spawn(SPOOL_INSPECT, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
