/**
 * How many uploads may run while reports are being received: acks come first, but uploads may
 * use whatever CPU is to spare. Fed every tick the event loop's utilization (the share of time it
 * was busy) and the machine's (all cores, all processes), the limit climbs by one upload per tick
 * while both have room, and halves when either is busy — so a saturated collector keeps its CPU
 * for acks (the spool is the buffer), and a collector at moderate load uploads as it receives,
 * without a backlog.
 */
export interface UploadShareOptions {
  /** Uploads allowed however busy the loop is. */
  min: number;
  /** Uploads allowed when the loop has room (DRAIN_CONCURRENCY). */
  max: number;
  /** Below this event-loop utilization the limit climbs… */
  roomBelow: number;
  /** …above this one it halves. */
  busyAbove: number;
  /** The same for the machine's cores. */
  machineRoomBelow: number;
  machineBusyAbove: number;
}

export const UPLOAD_SHARE_DEFAULTS = { roomBelow: 0.6, busyAbove: 0.85, machineRoomBelow: 0.75, machineBusyAbove: 0.9 };

export class UploadShare {
  private current: number;
  private busyAtMinimum = false;

  constructor(private readonly options: UploadShareOptions) {
    this.current = options.min;
  }

  get limit(): number {
    return this.current;
  }

  /** One tick's event-loop utilization and busy share of the machine's cores (0..1 each). */
  observe(utilization: number, machineBusy = 0): void {
    const { min, max, roomBelow, busyAbove, machineRoomBelow, machineBusyAbove } = this.options;
    if (utilization > busyAbove || machineBusy > machineBusyAbove) {
      this.busyAtMinimum = this.current === min;
      this.current = Math.max(min, Math.floor(this.current / 2));
    } else if (utilization < roomBelow && machineBusy < machineRoomBelow) {
      this.busyAtMinimum = false;
      this.current = Math.min(max, this.current + 1);
    }
  }

  /**
   * Still busy with the fewest uploads in flight: a limit on uploads in flight does not bound
   * their rate (against nearby storage one upload ends in milliseconds and the next begins), so
   * the drainer then also spaces the starts out.
   */
  get paced(): boolean {
    return this.busyAtMinimum;
  }

  /** Receiving starts after a pause: begin from the minimum, not from what an earlier burst left. */
  reset(): void {
    this.current = this.options.min;
    this.busyAtMinimum = false;
  }
}
