/**
 * Entry point: `node dist/main.js` (the collector), `node dist/main.js check` (what a start would
 * meet: collector/preflight.ts). Runs as one process with no wrapper so SIGTERM/SIGINT from
 * systemd or Kubernetes reach it directly. Exit codes: 0 after a graceful shutdown, 1 on a fatal
 * error or a second signal, 2 when it cannot start (invalid configuration, throttle rules or tokens,
 * unusable or locked spool, port in use).
 */
import { startCollector, type RunningCollector } from './collector/start-collector.js';
import { ConfigError, loadConfig } from './config.js';
import { growHeapForBuffers } from './heap-growth.js';
import { createLogger, logProcessWarnings, type Logger } from './logger.js';
import { CannotStart } from './cannot-start.js';
import { preflight } from './collector/preflight.js';

function cannotStart(message: string): never {
  process.stderr.write(`crashspool: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  growHeapForBuffers();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) cannotStart(error.message);
    throw error;
  }
  const logger = createLogger(config.logLevel);
  logProcessWarnings(logger);
  fatalLogger = logger;
  if (process.argv[2] === 'check') {
    logger.level = 'silent';
    process.exit(await preflight(config, logger, (line) => process.stdout.write(`${line}\n`)));
  }

  // Installed before start-up, so a signal that arrives while starting is not fatal: the
  // shutdown then runs as soon as the collector is up.
  let collector: RunningCollector | undefined;
  let firstSignal: NodeJS.Signals | undefined;
  const shutdown = (signal: NodeJS.Signals) => {
    collector!.shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.fatal({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignal) {
      // Everything acknowledged is already committed; the spool keeps what was not uploaded.
      logger.warn({ signal }, 'second signal: exiting now; the spool keeps what was not uploaded');
      process.exit(1);
    }
    firstSignal = signal;
    if (collector) shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Node's default for SIGHUP ends the process; here it re-reads the upload tokens.
  process.on('SIGHUP', () => collector?.reloadUploadTokens());

  try {
    collector = await startCollector(config, logger);
  } catch (error) {
    if (error instanceof CannotStart) cannotStart(error.message);
    throw error;
  }
  if (firstSignal) shutdown(firstSignal);
}

/** Once the logger exists, a fatal error is a JSON line like every other. */
let fatalLogger: Logger | undefined;

process.on('uncaughtException', (error) => {
  if (fatalLogger) fatalLogger.fatal({ err: error }, 'uncaught exception; exiting (everything acknowledged is in the spool)');
  else process.stderr.write(`crashspool: fatal: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

await main();
