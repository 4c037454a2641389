/** The publisher PUBLISH_URL names, with the collector's timeouts; undefined when it is empty or `none`. */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { AmqpPublisher } from './amqp-publisher.js';
import type { CrashPublisher } from './publisher.js';
import { PubsubPublisher } from './pubsub-publisher.js';
import { SqsPublisher } from './sqs-publisher.js';

export function createPublisher(config: Config, logger: Logger): CrashPublisher | undefined {
  const target = config.publishUrl;
  if (!target || target.kind === 'none') return undefined;
  const connectMs = config.publishConnectTimeoutSeconds * 1000;
  const timeoutMs = config.publishTimeoutSeconds * 1000;
  switch (target.kind) {
    case 'sqs':
      return new SqsPublisher({ queueUrl: target.queueUrl, connectMs, timeoutMs, logger });
    case 'amqp':
      return new AmqpPublisher({ url: target.url, queue: target.queue, connectMs, timeoutMs, logger });
    case 'pubsub':
      return new PubsubPublisher({ topic: target.topic, emulatorHost: process.env['PUBSUB_EMULATOR_HOST'] || undefined, timeoutMs, logger });
  }
}
