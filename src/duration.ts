/** Durations as an operator types and reads them: `30s`, `15m`, `2h`, `7d`. Pure, no I/O. */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Milliseconds for `<number><unit>` with unit ms, s, m, h, d or w (`1.5h` is allowed). Throws on anything else. */
export function parseDuration(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(raw.trim());
  if (!match) throw new Error(`expected a duration such as 30s, 15m, 2h or 7d, got "${raw}"`);
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  if (!Number.isSafeInteger(Math.round(ms))) throw new Error(`duration out of range: "${raw}"`);
  return Math.round(ms);
}

/** A short, coarse age for humans: `45s`, `12m 5s`, `3h 20m`, `4d 2h`. Negative ages read as `0s`. */
export function formatDuration(ms: number): string {
  let seconds = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(seconds / 86_400);
  seconds -= days * 86_400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return seconds > 0 ? `${minutes}m ${seconds}s` : `${minutes}m`;
  return `${seconds}s`;
}
