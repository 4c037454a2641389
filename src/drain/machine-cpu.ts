import { cpus } from 'node:os';

/**
 * How busy the machine's cores were since the last reading (0..1), from the kernel's per-core
 * times. The event loop's own utilization misses the CPU other processes take — an S3 server or
 * another service on the same machine — which uploads would compete with as well.
 */
export class MachineCpu {
  private last = MachineCpu.totals();

  private static totals(): { busy: number; total: number } {
    let busy = 0;
    let total = 0;
    for (const { times } of cpus()) {
      const all = times.user + times.nice + times.sys + times.idle + times.irq;
      total += all;
      busy += all - times.idle;
    }
    return { busy, total };
  }

  /** Busy share of all cores since the previous call (0 when no time passed). */
  busyShare(): number {
    const now = MachineCpu.totals();
    const total = now.total - this.last.total;
    const share = total > 0 ? (now.busy - this.last.busy) / total : 0;
    this.last = now;
    return share;
  }
}
