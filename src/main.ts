/**
 * Entry point: `node dist/main.js`. Runs as one process with no wrapper so SIGTERM/SIGINT from
 * systemd or Kubernetes reach it directly. Exit codes: 0 after a graceful shutdown, 1 on a fatal
 * error or a second signal, 2 on invalid configuration or a spool that cannot be used.
 */
import { startCollector } from './collector.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { SpoolError } from './spool.js';
import { SpoolLocked } from './spool-lock.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`crashspool: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);

  let collector;
  try {
    collector = await startCollector(config, logger);
  } catch (error) {
    if (error instanceof SpoolLocked || error instanceof SpoolError) {
      logger.fatal(error.message);
      process.stderr.write(`crashspool: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      // Everything acknowledged is already committed; the spool keeps what was not uploaded.
      logger.warn({ signal }, 'second signal: exiting now; the spool keeps what was not uploaded');
      process.exit(1);
    }
    collector.shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.fatal({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

process.on('uncaughtException', (error) => {
  process.stderr.write(`crashspool: fatal: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

await main();
