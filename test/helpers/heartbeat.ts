/**
 * `/__heartbeat__` answers in Dockerflow's shape ({status, checks, details}); tests mostly want
 * one check's figures: each check as `{ ok, ...details }` (ok: not an error; a warning passes).
 */
export type HeartbeatChecks = Record<string, { ok: boolean; status: string } & Record<string, unknown>>;

export function checksOf(document: unknown): HeartbeatChecks {
  const { details = {} } = document as { details?: Record<string, { status: string } & Record<string, unknown>> };
  return Object.fromEntries(Object.entries(details).map(([name, detail]) => [name, { ...detail, ok: detail.status !== 'error' }]));
}
