/**
 * `/__heartbeat__` in Dockerflow's shape (as python-dockerflow, which Antenna uses, answers):
 * `status` is the worst of the checks; `checks` names each check's status; `details` holds each
 * check's level (Python logging's: 0 ok, 30 warning, 40 error), its message where it has one, and
 * the figures it found. An error makes the answer 503; a warning (dead letters) does not.
 */

/** One named check of the heartbeat: whether it passes, and the figures it found. */
export interface Check {
  ok: boolean;
  /** Passing, but worth an operator's look (Dockerflow's `warning`): e.g. dead-lettered crashes. */
  warning?: string;
  [detail: string]: unknown;
}

export type CheckStatus = 'ok' | 'warning' | 'error';

const LEVELS: Record<CheckStatus, number> = { ok: 0, warning: 30, error: 40 };

export interface DockerflowHeartbeat {
  status: CheckStatus;
  checks: Record<string, CheckStatus>;
  details: Record<string, { status: CheckStatus; level: number; messages?: Record<string, string> } & Record<string, unknown>>;
}

const statusOf = (check: Check): CheckStatus => (!check.ok ? 'error' : check.warning ? 'warning' : 'ok');

export function dockerflowHeartbeat(checks: Record<string, Check>): { httpStatus: 200 | 503; body: DockerflowHeartbeat } {
  const body: DockerflowHeartbeat = { status: 'ok', checks: {}, details: {} };
  for (const [name, check] of Object.entries(checks)) {
    const status = statusOf(check);
    const { ok: _ok, warning, ...figures } = check;
    const message = typeof figures['error'] === 'string' ? figures['error'] : warning;
    body.checks[name] = status;
    body.details[name] = { status, level: LEVELS[status], ...(message ? { messages: { [`${name}.${status}`]: message } } : {}), ...figures };
    if (LEVELS[status] > LEVELS[body.status]) body.status = status;
  }
  return { httpStatus: body.status === 'error' ? 503 : 200, body };
}
