/**
 * deploy/gcp-iam-role.yaml grants exactly the permissions behind the Pub/Sub REST calls the
 * collector makes: nothing it needs is missing, nothing more is granted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const role = parse(readFileSync(new URL('../../deploy/gcp-iam-role.yaml', import.meta.url), 'utf8')) as { includedPermissions: string[]; stage: string; title: string };
const publisher = readFileSync(new URL('../../src/queue/pubsub-publisher.ts', import.meta.url), 'utf8');

/** The permission each REST call needs (a GET of the topic is topics.get; testIamPermissions needs none). */
const PERMISSION_OF: Record<string, string | undefined> = {
  'GET topic': 'pubsub.topics.get',
  'POST :publish': 'pubsub.topics.publish',
  'POST :testIamPermissions': undefined,
};

test('the GCP role grants the permission of every Pub/Sub call the collector makes, and no other', () => {
  const calls = [...publisher.matchAll(/this\.call\('(GET|POST)', ([^,)]+)/g)].map(([, method, path]) => {
    const verb = /:(\w+)`/.exec(path!)?.[1];
    return verb ? `${method} :${verb}` : `${method} topic`;
  });
  assert.ok(calls.includes('POST :publish') && calls.includes('GET topic'), calls.join(', '));
  const unknown = calls.filter((call) => !(call in PERMISSION_OF));
  assert.deepEqual(unknown, [], 'a new Pub/Sub call: add its permission to PERMISSION_OF and deploy/gcp-iam-role.yaml');
  const needed = new Set(calls.map((call) => PERMISSION_OF[call]).filter((permission) => permission !== undefined));
  assert.deepEqual([...role.includedPermissions].sort(), [...needed].sort());
  assert.equal(role.stage, 'GA');
});

test('the health check asks IAM for exactly the permission a publish needs', () => {
  assert.match(publisher, /testIamPermissions`, \{ permissions: \['pubsub\.topics\.publish'\] \}/);
});
