/**
 * Per-sender rate limits as token buckets: a sender may post `perMinute` reports in a burst, and
 * regains one every 60/perMinute seconds. Buckets are kept by sender name, so a reload of the
 * tokens file keeps what each sender has used.
 */
export class RateLimits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes one report from `name`'s bucket; false when it is empty. */
  take(name: string, perMinute: number): boolean {
    const now = this.now();
    const bucket = this.buckets.get(name) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
    bucket.at = now;
    this.buckets.set(name, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
