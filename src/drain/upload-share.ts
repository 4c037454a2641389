/**
 * How many uploads may run while reports are being received: acks come first, but uploads may
 * use whatever the event loop has to spare. Fed the event loop's utilization (the share of time
 * it was busy) every tick, the limit climbs by one upload per tick while the loop has room, and
 * halves when the loop is busy — so a saturated collector keeps its CPU for acks (the spool is
 * the buffer), and a collector at moderate load uploads as it receives, without a backlog.
 */
export interface UploadShareOptions {
  /** Uploads allowed however busy the loop is. */
  min: number;
  /** Uploads allowed when the loop has room (DRAIN_CONCURRENCY). */
  max: number;
  /** Below this utilization the limit climbs… */
  roomBelow: number;
  /** …above this one it halves. */
  busyAbove: number;
}

export const UPLOAD_SHARE_DEFAULTS = { roomBelow: 0.6, busyAbove: 0.85 };

export class UploadShare {
  private current: number;

  constructor(private readonly options: UploadShareOptions) {
    this.current = options.min;
  }

  get limit(): number {
    return this.current;
  }

  /** One tick's event-loop utilization (0..1). */
  observe(utilization: number): void {
    const { min, max, roomBelow, busyAbove } = this.options;
    if (utilization > busyAbove) this.current = Math.max(min, Math.floor(this.current / 2));
    else if (utilization < roomBelow) this.current = Math.min(max, this.current + 1);
  }

  /** Receiving starts after a pause: begin from the minimum, not from what an earlier burst left. */
  reset(): void {
    this.current = this.options.min;
  }
}
