/** Small pieces every benchmark phase uses: the collector's S3 environment and its heartbeat. */
import type { LogLine } from '../helpers/collector-process.js';
import type { S3Endpoint } from './baselines.js';

/** Collector environment draining to `prefix` in the test bucket. */
export function s3Env(s3: S3Endpoint, prefix: string): Record<string, string> {
  return {
    STORAGE_URL: `s3://${s3.bucket}/${prefix}`,
    S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  };
}

export const logTime = (line: LogLine) => Date.parse(String(line['time']));

/** The collector's spool depth and uploads so far, from `/__heartbeat__` (NaN when it does not answer). */
export async function heartbeat(url: string): Promise<{ pending: number; uploaded: number }> {
  try {
    const answer = await fetch(`${url}/__heartbeat__`);
    // Dockerflow's shape ({details: {...}}), or the flat one of builds before it (the bench compares both).
    const document = (await answer.json()) as { details?: object };
    const checks = (document.details ?? document) as { spool_depth?: { pending?: number }; drainer?: { uploaded?: number } };
    return { pending: checks.spool_depth?.pending ?? Number.NaN, uploaded: checks.drainer?.uploaded ?? Number.NaN };
  } catch {
    return { pending: Number.NaN, uploaded: Number.NaN };
  }
}

/** Median, smallest and largest of at least one value. */
export function spread(values: number[]): { median: number; min: number; max: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** "2.63× (2.41–2.90, 3 rounds)". */
export function describeSpread(values: number[], digits = 2, unit = '×'): string {
  const { median, min, max } = spread(values);
  return `${median.toFixed(digits)}${unit} (${min.toFixed(digits)}–${max.toFixed(digits)}, ${values.length} round${values.length === 1 ? '' : 's'})`;
}
