/**
 * The HTTP surface, built by a function so tests can make one in-process (`app.request`).
 * Handlers are small; everything they need comes in through `AppDeps`; `/submit`'s steps are in
 * submit.ts and every refusal is answered by refusal.ts.
 */
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Metrics } from '../metrics.js';
import type { VersionInfo } from '../version.js';
import { answer, Refusal, RETRY_AFTER_SECONDS, shuttingDown } from './refusal.js';
import { submit, type SubmitDeps } from './submit.js';

export interface ServiceState {
  /** False from the first shutdown signal on: load balancers should stop routing here. */
  readonly routable: boolean;
  /** False once the spool is closed: nothing can be acknowledged any more. */
  readonly accepting: boolean;
}

export interface AppDeps extends SubmitDeps {
  state: ServiceState;
  version: VersionInfo;
  /** `/__heartbeat__`'s answer: Dockerflow's JSON document and its status (health/). */
  heartbeat: () => Promise<{ httpStatus: 200 | 503; body: object }>;
  /** Brings the spool gauges up to date before a scrape. */
  refreshGauges: () => void;
  /** False when `/metrics` is served on its own port (METRICS_PORT). */
  serveMetrics: boolean;
}

/** `/metrics` in Prometheus text format, for the public app or a separate metrics port. */
export function metricsRoute(metrics: Metrics, refreshGauges: () => void) {
  return async () => {
    refreshGauges();
    return new Response(await metrics.registry.metrics(), { headers: { 'Content-Type': metrics.registry.contentType } });
  };
}

export function createMetricsApp(metrics: Metrics, refreshGauges: () => void) {
  const app = new Hono();
  app.get('/metrics', metricsRoute(metrics, refreshGauges));
  return app;
}

export function createApp(deps: AppDeps) {
  const { logger, metrics } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.post('/submit', async (c) => {
    const started = performance.now();
    metrics.received.inc();
    const incoming = c.env.incoming;
    const userAgent = incoming.headers['user-agent'] ?? '';
    if (!deps.state.accepting) return answer(shuttingDown, metrics, logger, userAgent);
    const memory = deps.memory.open();
    try {
      return await submit(deps, { url: c.req.url, incoming, userAgent, memory, started });
    } catch (error) {
      if (error instanceof Refusal) return answer(error, metrics, logger, userAgent);
      throw error;
    } finally {
      memory.close();
    }
  });

  app.all('/submit', () => new Response('Method Not Allowed\n', { status: 405, headers: { Allow: 'POST' } }));

  app.get('/__lbheartbeat__', (c) =>
    deps.state.routable ? c.text('OK\n') : c.text('shutting down\n', 503, { 'Retry-After': RETRY_AFTER_SECONDS }),
  );
  app.get('/__heartbeat__', async (c) => {
    const { httpStatus, body } = await deps.heartbeat();
    return c.json(body, httpStatus);
  });
  app.get('/__version__', (c) => c.json(deps.version));
  if (deps.serveMetrics) app.get('/metrics', metricsRoute(metrics, deps.refreshGauges));

  app.onError((error, c) => {
    logger.error({ err: error, path: c.req.path }, 'unhandled error in request');
    return c.text('Internal Server Error\n', 500);
  });
  return app;
}
