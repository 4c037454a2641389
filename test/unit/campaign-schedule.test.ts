import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedule, type LifePlan, type ScheduleOptions } from '../campaign/schedule.js';

const options: ScheduleOptions = {
  queues: ['sqs', 'amqp', 'pubsub'],
  storageFaults: ['blackhole', 'refused', 'flaky'],
  queueFaults: { sqs: ['frozen'], amqp: ['queue deleted'], pubsub: ['garbage'] },
  powerCuts: true,
};
const take = (seed: number, count: number): LifePlan[] => {
  const plans: LifePlan[] = [];
  for (const plan of schedule(seed, options)) {
    plans.push(plan);
    if (plans.length === count) break;
  }
  return plans;
};

test('a campaign seed gives the same lives every time, and a shorter run is a prefix of a longer one', () => {
  assert.deepEqual(take(42, 300), take(42, 300));
  assert.deepEqual(take(42, 100), take(42, 300).slice(0, 100));
  assert.notDeepEqual(take(42, 50), take(43, 50));
});

test('a campaign schedule reaches every ending, moment, queue kind and operator action', () => {
  const plans = take(7, 1000);
  for (const [field, values] of [
    ['ending', ['SIGKILL', 'SIGTERM', 'power cut']],
    ['moment', ['start-up', 'ack', 'upload', 'publish', 'checkpoint', 'any time']],
    ['queue', ['sqs', 'amqp', 'pubsub']],
  ] as const) {
    assert.deepEqual(new Set(plans.map((plan) => plan[field])), new Set(values), field);
  }
  const actions = new Set(plans.flatMap((plan) => plan.operator.map((step) => step.action)));
  assert.equal(actions.size, 7, [...actions].join(', '));
  assert.ok(plans.some((plan) => plan.drainSeconds !== undefined), 'a stopped node is drained');
  // The queue kinds take turns in segments, not life by life.
  const turns = plans.filter((plan, i) => i > 0 && plan.queue !== plans[i - 1]!.queue).length;
  assert.ok(turns > 30 && turns < 200, `${turns} turns`);
});

test('without power cuts no life ends in one', () => {
  let count = 0;
  for (const plan of schedule(7, { ...options, powerCuts: false })) {
    assert.notEqual(plan.ending, 'power cut');
    if ((count += 1) === 1000) break;
  }
});
