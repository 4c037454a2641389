/**
 * A memory cgroup of the test's own, below the one this process runs in (cgroup v1's memory
 * controller or cgroup v2), with a hard limit: a process started in it is OOM-killed by the kernel
 * past the limit, as a container runtime's would be. Needs root.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class MemoryCgroup {
  private constructor(
    readonly dir: string,
    readonly version: 1 | 2,
  ) {}

  /** Why no memory cgroup can be made here, or undefined when one can. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'needs root to make a memory cgroup';
    if (!MemoryCgroup.parent()) return 'no writable memory cgroup (v1 memory controller or v2) on this machine';
    return undefined;
  }

  private static parent(): { dir: string; version: 1 | 2 } | undefined {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const v1 = lines.map((line) => line.split(':')).find(([, controllers]) => controllers!.split(',').includes('memory'));
    if (v1 && existsSync('/sys/fs/cgroup/memory')) return { dir: join('/sys/fs/cgroup/memory', v1[2]!), version: 1 };
    const v2 = lines.find((line) => line.startsWith('0::'));
    if (v2 && existsSync('/sys/fs/cgroup/cgroup.controllers')) return { dir: join('/sys/fs/cgroup', v2.slice(3)), version: 2 };
    return undefined;
  }

  static create(name: string, limitBytes: number): MemoryCgroup {
    const parent = MemoryCgroup.parent();
    if (!parent) throw new Error(MemoryCgroup.unavailable());
    const dir = join(parent.dir, `${name}-${process.pid}-${Date.now()}`);
    mkdirSync(dir);
    const cgroup = new MemoryCgroup(dir, parent.version);
    if (parent.version === 1) {
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
      // Swap would hide the limit (a process swapped out is not killed); none where it can be said.
      try {
        writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limitBytes));
      } catch {
        // no swap accounting: nothing to limit
      }
    } else {
      writeFileSync(join(dir, 'memory.max'), String(limitBytes));
      writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
    return cgroup;
  }

  /** The command prefix that runs what follows inside this cgroup. */
  prefix(): string[] {
    return ['/bin/sh', '-c', `echo $$ > ${join(this.dir, 'cgroup.procs')} && exec "$@"`, 'in-cgroup'];
  }

  /** Processes the kernel OOM-killed in this cgroup. */
  oomKills(): number {
    const file = this.version === 1 ? 'memory.oom_control' : 'memory.events';
    const match = /^oom_kill (\d+)$/m.exec(readFileSync(join(this.dir, file), 'utf8'));
    return Number(match?.[1] ?? 0);
  }

  /** The most memory the cgroup has used (v1: since it was made; v2: memory.peak where the kernel has it). */
  peakBytes(): number | undefined {
    const file = join(this.dir, this.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
  }

  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // a process still in it; the kernel keeps it until then
    }
  }
}
