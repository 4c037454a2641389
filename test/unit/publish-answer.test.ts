import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountFor } from '../../src/drain/publish-answer.js';

const batch = ['a', 'b', 'c'].map((crashId, seq) => ({ crashId, seq }));
const none = { published: [], failed: [], unknown: [] };

test('I13: a confirmed entry is confirmed; an entry the answer leaves out is a failure of the queue, tried again', () => {
  const answer = accountFor(batch, { ...none, published: ['a', 'b'] });
  assert.deepEqual(answer.confirmed.map((crash) => crash.crashId), ['a', 'b']);
  assert.deepEqual(answer.refused.map(({ crash, reason, scope }) => [crash.crashId, reason, scope]), [['c', 'unaccounted', 'queue']]);
  assert.equal(answer.accountsForNone, false);
});

test('I11, I13: entries never sent are set aside, never read as a crash; an answer for none of the batch says so', () => {
  const answer = accountFor(batch, { published: ['x', 'y'], failed: [{ crashId: 'z', error: 'e', reason: 'rejected', scope: 'crash' }], unknown: ['7'] });
  assert.deepEqual(answer.unknown.sort(), ['7', 'x', 'y', 'z']);
  assert.deepEqual(answer.confirmed, []);
  assert.equal(answer.accountsForNone, true);
  assert.equal(answer.refused.length, 3, 'every crash sent is tried again');
  assert.equal(accountFor(batch, none).accountsForNone, true);
});

test('I13: an entry in both lists, or twice, is not taken as confirmed', () => {
  const answer = accountFor(batch, {
    published: ['a', 'a', 'b', 'c'],
    failed: [{ crashId: 'b', error: 'nack', reason: 'nacked', scope: 'queue' }],
    unknown: [],
  });
  assert.deepEqual(answer.confirmed.map((crash) => crash.crashId), ['a', 'c']);
  assert.deepEqual(answer.refused.map(({ crash, reason }) => [crash.crashId, reason]), [['b', 'nacked']]);
});
