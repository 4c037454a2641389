/**
 * Capped exponential backoff with full jitter: the n-th consecutive failure waits a random time in
 * [base·2^(n-1) / 2, base·2^(n-1)], capped at `max`. Half of the window is kept as a floor so a
 * storage outage never turns into a hot loop even with unlucky draws.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
