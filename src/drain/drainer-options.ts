import type { Config } from '../config.js';
import type { DrainerOptions } from './drainer.js';

/** The drainer's options as the collector runs it, from the DRAIN_* settings. */
export function drainerOptions(config: Config): DrainerOptions {
  return {
    concurrency: config.drainConcurrency,
    maxInflightBytes: config.drainInflightMaxBytes,
    concurrencyWhileReceiving: Math.min(config.drainConcurrencyWhileReceiving, config.drainConcurrency),
    yieldMaxMs: config.drainYieldMaxSeconds * 1000,
    retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
    maxAttempts: config.maxAttempts,
  };
}
