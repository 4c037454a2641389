/**
 * Node side of the power-loss layer (powerloss_fs.py): mounts it between a mount point and a
 * backing directory, sends it commands (cut the power now, or at the Nth write from now), and takes
 * it down again however the test ended. Reads and writes through the mount behave like a page
 * cache; the backing directory holds exactly what was made durable with fsync (see the Python
 * module's doc for the rules).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/collector-process.js';

const run = promisify(execFile);
export const LAYER_SCRIPT = fileURLToPath(new URL('./powerloss_fs.py', import.meta.url));
const ENSURE_FUSE = fileURLToPath(new URL('./ensure-fuse.sh', import.meta.url));
/** Debian's interpreter, which has python3-fusepy; the python3 first on PATH may be another one. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export type CutMode = 'drop' | 'torn';

export interface UnsyncedFile {
  pages: number;
  size: number;
  durable_size: number;
}

export interface CutInfo {
  mode: CutMode;
  trigger: { op: 'command' | 'signal' | 'write'; file?: string; offset?: number; size?: number; n?: number };
  at_write: number;
  last_write: { file: string; offset: number; size: number; n: number } | null;
  /** Files with data not yet fsynced at the cut, by their last name. */
  unsynced_files: Record<string, UnsyncedFile>;
  /** Directories (by name) with entry changes not yet fsynced at the cut, and the names changed. */
  unsynced_dir_entries: Record<string, string[]>;
  kept_pages: number;
  dropped_pages: number;
  /** The layer's self-check: the backing directory equals its durable view after the cut. */
  backing_matches: boolean;
}

export interface LayerStats {
  writes: number;
  /** Writes by the file's last name. */
  writes_by_file: Record<string, number>;
  fsyncs: number;
  fsyncdirs: number;
  armed_at: number | null;
  armed_file: string | null;
  seed: number;
  unsynced_files: Record<string, UnsyncedFile>;
  unsynced_dir_entries: Record<string, string[]>;
  cut: CutInfo | null;
}

let fuseChecked: { skip?: string } | undefined;

/**
 * Installs fuse3 + python3-fusepy when missing (ensure-fuse.sh). Returns why the layer cannot run
 * here (no /dev/fuse, not root), or undefined when it can; throws when the installation failed.
 */
export function fuseSkipReason(): string | undefined {
  if (!fuseChecked) {
    try {
      execFileSync(ENSURE_FUSE, { stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
      fuseChecked = {};
    } catch (error) {
      const failure = error as { status?: number; stdout?: Buffer };
      if (failure.status === 77) fuseChecked = { skip: `power-loss layer skipped: ${failure.stdout?.toString().trim()}` };
      else throw new Error(`installing fuse3/python3-fusepy failed (${ENSURE_FUSE}, exit ${failure.status})`);
    }
  }
  return fuseChecked.skip;
}

interface Mount {
  mountpoint: string;
  fstype: string;
}

function mounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const dash = fields.indexOf('-');
      // mount points escape spaces etc. as octal
      const mountpoint = fields[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
      return { mountpoint, fstype: fields[dash + 1]! };
    });
}

export function isMounted(mountpoint: string): boolean {
  return mounts().some((mount) => mount.mountpoint === mountpoint);
}

/**
 * Lazily unmounts layer mounts whose process is gone (a run that was killed): they answer
 * ENOTCONN and would break later runs. Mounts of a live layer (another run) are left alone.
 */
export async function cleanStaleMounts(): Promise<string[]> {
  const cleaned: string[] = [];
  for (const mount of mounts()) {
    if (mount.fstype !== 'fuse.powerloss') continue;
    try {
      statSync(mount.mountpoint);
      continue;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTCONN') continue;
    }
    await run('umount', ['-l', mount.mountpoint]).catch(() => undefined);
    cleaned.push(mount.mountpoint);
  }
  return cleaned;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** A sleep that does not keep the process alive (for races against an exit). */
const unrefSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface LayerOptions {
  backing: string;
  /** Created when not given. */
  mountpoint?: string;
  seed?: number;
}

export class PowerLossLayer {
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private unmounted = false;

  private constructor(
    readonly child: ChildProcess,
    readonly backing: string,
    readonly mountpoint: string,
    readonly controlSocket: string,
    /** The mount point was made by `mount` (and is removed by `unmount`). */
    private readonly ownsMountpoint: boolean,
  ) {
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async mount(options: LayerOptions): Promise<PowerLossLayer> {
    const mountpoint = options.mountpoint ?? tempDir('powerloss-mnt');
    mkdirSync(mountpoint, { recursive: true });
    const controlSocket = join(tempDir('powerloss-ctl'), 'control.sock');
    const args = [LAYER_SCRIPT, '--backing', options.backing, '--mount', mountpoint, '--control', controlSocket];
    if (options.seed !== undefined) args.push('--seed', String(options.seed >>> 0));
    const child = spawn(DEBIAN_PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const layer = new PowerLossLayer(child, options.backing, mountpoint, controlSocket, options.mountpoint === undefined);
    const ready = new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        out += text;
        if (out.includes('"ready": true')) resolve();
      });
      void layer.exited.then((exit) => reject(new Error(`power-loss layer exited (${exit.code ?? exit.signal}) before mounting: ${layer.stderr}`)));
      setTimeout(() => reject(new Error(`power-loss layer not ready after 20 s: ${layer.stderr}`)), 20_000).unref();
    });
    try {
      await ready;
      for (let i = 0; !isMounted(mountpoint); i += 1) {
        if (i > 200) throw new Error(`${mountpoint} not in /proc/self/mountinfo`);
        await sleep(10);
      }
      await layer.command('ping');
    } catch (error) {
      await layer.unmount();
      throw error;
    }
    return layer;
  }

  /** Sends one control command and returns its JSON answer. */
  command(line: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.controlSocket);
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(`${line}\n`));
      socket.on('data', (text: string) => {
        answer += text;
        const end = answer.indexOf('\n');
        if (end < 0) return;
        socket.end();
        const parsed = JSON.parse(answer.slice(0, end)) as Record<string, unknown>;
        if (typeof parsed['error'] === 'string') reject(new Error(`layer: ${parsed['error']}`));
        else resolve(parsed);
      });
      socket.on('error', reject);
      socket.setTimeout(30_000, () => socket.destroy(new Error(`layer command "${line}" timed out`)));
    });
  }

  async stats(): Promise<LayerStats> {
    return (await this.command('stats')) as unknown as LayerStats;
  }

  /** Cuts the power now. Resolves with what was unsynced and what the cut did. */
  async cut(mode: CutMode): Promise<CutInfo> {
    const stats = (await this.command(`cut ${mode}`)) as unknown as LayerStats;
    return stats.cut!;
  }

  /**
   * Cuts the power when the `writes`th write from now arrives (that write fails with EIO);
   * with `file`, counts only writes to files of that name (e.g. `spool.db`: a WAL checkpoint).
   */
  async arm(writes: number, mode: CutMode, file?: string): Promise<number> {
    if (file !== undefined && !/^[^\s/]+$/.test(file)) throw new Error(`arm: bad file name ${file}`);
    const answer = await this.command(`arm ${Math.max(1, Math.floor(writes))} ${mode}${file ? ` ${file}` : ''}`);
    return answer['armed_at'] as number;
  }

  /** Makes everything durable, like sync(2). */
  async sync(): Promise<void> {
    await this.command('sync');
  }

  /**
   * Unmounts and waits for the layer to exit. Without a cut, a clean unmount makes everything
   * durable (as a real file system does); after one, the backing directory keeps what was durable.
   * Falls back to a lazy unmount, and to killing the layer process, so no mount is left behind.
   */
  async unmount(): Promise<void> {
    if (this.unmounted) return;
    this.unmounted = true;
    const running = () => this.child.exitCode === null && this.child.signalCode === null;
    for (let attempt = 0; attempt < 20 && isMounted(this.mountpoint); attempt += 1) {
      try {
        await run('fusermount3', ['-u', this.mountpoint]);
      } catch {
        await sleep(50); // EBUSY while a killed process's files are still being released
      }
    }
    if (isMounted(this.mountpoint)) await run('umount', ['-l', this.mountpoint]).catch(() => undefined);
    const exited = await Promise.race([this.exited.then(() => true), unrefSleep(10_000).then(() => false)]);
    if (!exited && running()) {
      this.child.kill('SIGKILL');
      await this.exited;
      if (isMounted(this.mountpoint)) await run('umount', ['-l', this.mountpoint]).catch(() => undefined);
    }
    rmSync(dirname(this.controlSocket), { recursive: true, force: true });
    if (this.ownsMountpoint && !isMounted(this.mountpoint)) {
      try {
        rmdirSync(this.mountpoint); // only ever an empty directory
      } catch {
        // left for cleanStaleMounts / the next reboot
      }
    }
  }
}
