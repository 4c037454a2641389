/**
 * What the drainer yields to (DrainerLoad): whether reports are being received, how many uploads
 * the event loop and the machine's cores have room for meanwhile (upload-share.ts, followed every
 * 250 ms), and whether the spool is filling up.
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Config } from '../config.js';
import type { DrainerLoad } from '../drain/drainer.js';
import { MachineCpu } from '../drain/machine-cpu.js';
import { UPLOAD_SHARE_DEFAULTS, UploadShare } from '../drain/upload-share.js';
import type { MemoryBudget } from '../report/memory-budget.js';
import type { SpoolUsage } from '../spool/runtime/usage.js';

/** After the last report ended, how long the drainer still counts as yielding to receiving. */
const RECEIVING_HOLD_MS = 1000;
/** How often the uploads allowed while receiving follow the event loop's utilization. */
const UPLOAD_SHARE_TICK_MS = 250;

export interface LoadSignals {
  load: DrainerLoad;
  stop(): void;
}

export function startLoadSignals(config: Config, memory: MemoryBudget, usage: SpoolUsage, errors: BackgroundErrors): LoadSignals {
  // Gaps between reports do not count as idle: a drainer that sprang to full concurrency in every
  // gap would make the next reports wait.
  const receiving = () => memory.requestsInFlight > 0 || Date.now() - memory.lastRequestEndedAt < RECEIVING_HOLD_MS;
  const concurrencyWhileReceiving = Math.min(config.drainConcurrencyWhileReceiving, config.drainConcurrency);
  const uploadShare = new UploadShare({ min: concurrencyWhileReceiving, max: config.drainConcurrency, ...UPLOAD_SHARE_DEFAULTS });
  let loopUse = performance.eventLoopUtilization();
  const machineCpu = new MachineCpu();
  const ticker = setInterval(
    errors.guard('upload_share', () => {
      const tick = performance.eventLoopUtilization(loopUse);
      loopUse = performance.eventLoopUtilization();
      const machineBusy = machineCpu.busyShare();
      if (receiving()) uploadShare.observe(tick.utilization, machineBusy);
      else uploadShare.reset();
    }),
    UPLOAD_SHARE_TICK_MS,
  );
  ticker.unref();
  return {
    load: {
      receiving,
      uploadsWhileReceiving: () => uploadShare.limit,
      uploadsPaced: () => uploadShare.paced,
      spoolFillingUp: () => usage.bytes > config.spoolMaxBytes / 2,
    },
    stop: () => clearInterval(ticker),
  };
}
