/**
 * The files in deploy/ are checked by the tools that will read them, not just written: the
 * systemd unit by `systemd-analyze verify` (Debian's systemd), the Kubernetes manifests against
 * the Kubernetes schemas (kubernetes-models), the alert rules by `promtool check rules` and
 * `promtool test rules` (Debian's prometheus) — and each against the collector's own settings and
 * the metric names a running collector really exports. (deploy/haproxy.cfg runs in test/fleet.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Service } from 'kubernetes-models/v1/Service';
import { Secret } from 'kubernetes-models/v1/Secret';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadConfig, parseByteSize, settings } from '../../src/config.js';

const UNIT = new URL('../../deploy/crashspool.service', import.meta.url);

/** `Key=value` lines of a unit file (the last one of a key wins, as in systemd). */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

test('systemd unit: systemd-analyze verify finds nothing to say', () => {
  // verify checks that ExecStart's binary exists: point it at this machine's node.
  const unit = readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
  const file = join(tempDir('unit'), 'crashspool.service');
  writeFileSync(file, unit);
  const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(result.error, undefined, 'systemd-analyze runs (scripts/run-tests installs systemd)');
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr.trim(), '', 'no warnings either (unknown keys and bad values are only warnings)');
});

test('systemd unit: node is the main process, the spool is the only writable path, and systemd waits out the shutdown', () => {
  const unit = directives(readFileSync(UNIT, 'utf8'));
  const one = (key: string) => unit.get(key)?.at(-1);
  assert.match(one('ExecStart')!, /^\/usr\/bin\/node \S+\/dist\/main\.js$/);
  assert.equal(one('Type'), 'simple');
  assert.equal(one('Restart'), 'on-failure');
  const environment = new Map((unit.get('Environment') ?? []).map((pair) => pair.split('=', 2) as [string, string]));
  const spool = environment.get('SPOOL_DIR')!;
  assert.ok(spool.startsWith(`/var/lib/${one('StateDirectory')}/`), `SPOOL_DIR ${spool} is in the state directory`);
  assert.ok(spool.startsWith(one('ReadWritePaths')!), 'the spool is writable');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectHome'), 'yes');
  const grace = Number(environment.get('SHUTDOWN_LB_GRACE_SECONDS'));
  const deadline = Number(environment.get('SHUTDOWN_DEADLINE_SECONDS'));
  const stop = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec')!)![1]);
  assert.ok(stop > grace + deadline, `TimeoutStopSec ${stop} s > grace ${grace} s + deadline ${deadline} s`);
});

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function manifests(): Manifest[] {
  return parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes.yaml'), 'utf8')).map((document) => document.toJS() as Manifest);
}

test('Kubernetes: every manifest is valid against the Kubernetes schemas', () => {
  const all = manifests();
  assert.deepEqual(all.map((manifest) => manifest.kind).sort(), ['Service', 'Service', 'StatefulSet']);
  for (const manifest of all) {
    const model = manifest.kind === 'StatefulSet' ? new StatefulSet(manifest as never) : new Service(manifest as never);
    assert.doesNotThrow(() => model.validate(), `${manifest.kind} ${manifest.metadata.name}`);
  }
  // The validation can fail: a wrong type is caught.
  const broken = structuredClone(all.find((manifest) => manifest.kind === 'StatefulSet')!);
  broken.spec['replicas'] = 'three';
  assert.throws(() => new StatefulSet(broken as never).validate(), /replicas must be integer/);
});

test('Kubernetes: a volume per pod for the spool, readiness on the LB heartbeat, no liveness on /__heartbeat__, a grace period above LB grace + deadline', () => {
  const set = new StatefulSet(manifests().find((manifest) => manifest.kind === 'StatefulSet') as never);
  const pod = set.spec!.template.spec!;
  const container = pod.containers[0]!;
  const env = new Map((container.env ?? []).map((variable) => [variable.name, variable.value ?? '']));
  assert.equal(container.command, undefined, "the image's entry point (tini) stays PID 1");
  assert.deepEqual(container.args, ['node', 'dist/main.js']);
  const claim = set.spec!.volumeClaimTemplates![0]!;
  const mount = container.volumeMounts!.find((volume) => volume.name === claim.metadata!.name)!;
  assert.ok(env.get('SPOOL_DIR')!.startsWith(`${mount.mountPath}/`), 'the spool is on the per-pod volume');
  assert.ok(
    parseByteSize(env.get('SPOOL_MAX_BYTES')!) < parseByteSize(String(claim.spec!.resources!.requests!['storage']).replace(/Gi$/, 'g')),
    'SPOOL_MAX_BYTES below the volume size',
  );
  assert.equal(container.readinessProbe?.httpGet?.path, '/__lbheartbeat__');
  assert.equal(container.livenessProbe, undefined, 'no liveness probe: a storage outage must never restart the pods holding the only copies');
  const grace = Number(env.get('SHUTDOWN_LB_GRACE_SECONDS'));
  const deadline = Number(env.get('SHUTDOWN_DEADLINE_SECONDS'));
  assert.ok(pod.terminationGracePeriodSeconds! > grace + deadline, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > ${grace} + ${deadline}`);
  const probePeriod = container.readinessProbe!.periodSeconds! * container.readinessProbe!.failureThreshold!;
  assert.ok(grace > probePeriod, `SHUTDOWN_LB_GRACE_SECONDS ${grace} > readiness period × threshold ${probePeriod}`);
});

function promtool(...args: string[]) {
  const result = spawnSync('promtool', args, { cwd: DEPLOY, encoding: 'utf8' });
  assert.equal(result.error, undefined, 'promtool runs (scripts/run-tests installs prometheus)');
  return result;
}

test('Prometheus alert rules: promtool check rules and promtool test rules pass', () => {
  const check = promtool('check', 'rules', 'prometheus-rules.yml');
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const unit = promtool('test', 'rules', 'prometheus-rules.test.yml');
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);
});

/** The metric names a freshly started collector exports on /metrics. */
async function exportedMetrics(): Promise<Set<string>> {
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${tempDir('files')}` });
  try {
    const text = await (await fetch(`${collector.url}/metrics`)).text();
    return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!));
  } finally {
    await collector.stop();
  }
}

test('Prometheus alert rules name only metrics a running collector exports', async () => {
  const rules = readFileSync(join(DEPLOY, 'prometheus-rules.yml'), 'utf8');
  const named = new Set(rules.match(/\bcrashspool_[a-z_]+/g));
  const exported = await exportedMetrics();
  assert.ok(named.size >= 6, [...named].join(', '));
  assert.deepEqual([...named].filter((name) => !exported.has(name)), [], 'metrics in the rules that the collector does not export');
});

/** The samples of a Prometheus text scrape, each as a promtool input series holding its value for `minutes`, with `instance` added. */
function seriesFromScrape(text: string, instance: string, minutes: number): { series: string; values: string }[] {
  const series: { series: string; values: string }[] = [];
  for (const line of text.split('\n')) {
    const sample = /^(crashspool_[a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!sample || !Number.isFinite(Number(sample[3]))) continue;
    const labels = [`instance="${instance}"`, ...(sample[2] ? [sample[2]] : [])].join(',');
    series.push({ series: `${sample[1]}{${labels}}`, values: `${sample[3]}x${minutes}` });
  }
  return series;
}

test('the alerts fire for a node that never reached storage: input series taken from a real collector scrape in that state', async () => {
  // Storage unreachable from the start: the node takes crashes into its spool and uploads nothing.
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    STORAGE_URL: 's3://never-reached',
    S3_ENDPOINT: 'http://127.0.0.1:9',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'y',
    AWS_REGION: 'us-east-1',
  });
  let text: string;
  try {
    // Three different reports (another comment each; the same one again would be a repeat).
    const form = (posted: number) =>
      `--b\r\nContent-Disposition: form-data; name="ProductName"\r\n\r\nApp\r\n--b\r\nContent-Disposition: form-data; name="Comments"\r\n\r\n${posted}\r\n` +
      '--b\r\nContent-Disposition: form-data; name="upload_file_minidump"; filename="m.dmp"\r\n\r\nMDMP\r\n--b--\r\n';
    for (let posted = 0; posted < 3; posted++) {
      const answer = await fetch(`${collector.url}/submit`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b' }, body: form(posted) });
      assert.equal(answer.status, 200);
    }
    // The first scrape starts the storage probe; a later one reports its answer.
    const deadline = Date.now() + 15_000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 250));
      text = await (await fetch(`${collector.url}/metrics`)).text();
    } while (!/^crashspool_storage_up 0$/m.test(text) && Date.now() < deadline);
  } finally {
    await collector.stop();
  }
  assert.match(text, /^crashspool_storage_up 0$/m);
  assert.match(text, /^crashspool_spool_crashes\{state="pending"\} 3$/m);
  assert.match(text, /^crashspool_upload_attempts_total\{outcome="ok"\} 0$/m, 'the ok series is exported before any upload');

  const input = seriesFromScrape(text, 'node', 30);
  const file = join(tempDir('rules-from-scrape'), 'rules-from-scrape.test.yml');
  const rules = (parseAllDocuments(readFileSync(join(DEPLOY, 'prometheus-rules.yml'), 'utf8'))[0]!.toJS() as {
    groups: { rules: { alert: string; annotations: Record<string, string> }[] }[];
  }).groups.flatMap((group) => group.rules);
  const annotations = (name: string) =>
    Object.fromEntries(Object.entries(rules.find((rule) => rule.alert === name)!.annotations).map(([key, text]) => [key, text.replaceAll('{{ $labels.instance }}', 'node')]));
  const alert = (name: string, labels: Record<string, string>) => ({
    eval_time: '16m',
    alertname: name,
    exp_alerts: [{ exp_labels: { instance: 'node', ...labels }, exp_annotations: annotations(name) }],
  });
  writeFileSync(
    file,
    JSON.stringify({
      rule_files: [join(DEPLOY, 'prometheus-rules.yml')],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: input,
          alert_rule_test: [
            alert('CrashspoolDrainStalled', { severity: 'critical', state: 'pending' }),
            alert('CrashspoolStorageDown', { severity: 'critical' }),
            { eval_time: '16m', alertname: 'CrashspoolDeadLetters', exp_alerts: [] },
          ],
        },
      ],
    }),
  );
  const result = promtool('test', 'rules', file);
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}\ninput: ${JSON.stringify(input)}`);
});

interface DashboardPanel {
  type: string;
  title: string;
  description?: string;
  targets?: { expr: string }[];
}

const dashboard = () => JSON.parse(readFileSync(join(DEPLOY, 'grafana-dashboard.json'), 'utf8')) as { panels: DashboardPanel[] };
const queries = () => dashboard().panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));

test('Grafana dashboard: every query parses (promtool check rules, as recording rules)', () => {
  const all = queries();
  assert.ok(all.length >= 20, `${all.length} queries`);
  const rules = {
    groups: [{ name: 'dashboard', rules: all.map(({ expr }, index) => ({ record: `dashboard:query_${index}`, expr: expr.replaceAll('$instance', '.*') })) }],
  };
  const file = join(tempDir('dashboard-rules'), 'dashboard-rules.yml');
  writeFileSync(file, JSON.stringify(rules, null, 2));
  const check = promtool('check', 'rules', file);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('Grafana dashboard: every metric a panel reads is exported by a running collector; each panel names existing alerts and runbook rows', async () => {
  const exported = await exportedMetrics();
  const read = new Set(queries().flatMap(({ expr }) => [...expr.matchAll(/\b((?:crashspool|process|nodejs)_[a-z_]+)/g)].map((match) => match[1]!.replace(/_(bucket|sum|count)$/, ''))));
  assert.deepEqual([...read].filter((name) => !exported.has(name)), [], 'metrics the dashboard reads that the collector does not export');
  assert.ok([...read].filter((name) => name.startsWith('crashspool_')).length >= 18, 'the dashboard covers the collector\'s metrics');

  const alerts = new Set([...readFileSync(join(DEPLOY, 'prometheus-rules.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map((match) => match[1]!));
  const operations = readFileSync(new URL('../../docs/OPERATIONS.md', import.meta.url), 'utf8');
  const runbook = new Set([...operations.slice(operations.indexOf('## Runbook')).matchAll(/^\| ([A-Z][^|]+?) \|/gm)].map((match) => match[1]!));
  const named = new Set<string>();
  for (const panel of dashboard().panels.filter((one) => one.type !== 'row')) {
    const description = panel.description ?? '';
    for (const [, alert] of description.matchAll(/\b(Crashspool\w+)/g)) {
      assert.ok(alerts.has(alert!), `${panel.title}: no alert ${alert}`);
      named.add(alert!);
    }
    for (const [, row] of description.matchAll(/\*Runbook\*: ([^.,]+)/g)) assert.ok(runbook.has(row!), `${panel.title}: no runbook row "${row}" in OPERATIONS.md`);
  }
  assert.deepEqual([...alerts].filter((alert) => !named.has(alert)), [], 'every alert has a panel');
});

const yamlDocuments = (file: string) => parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).map((document) => document.toJS() as Manifest & Record<string, unknown>);

test("Kubernetes: the example Secret is valid, named as the StatefulSet reads it, and holds only settings the collector or the AWS SDK reads", () => {
  const [secret] = yamlDocuments('kubernetes-secret.example.yaml');
  assert.doesNotThrow(() => new Secret(secret as never).validate());
  const set = new StatefulSet(manifests().find((manifest) => manifest.kind === 'StatefulSet') as never);
  const container = set.spec!.template.spec!.containers[0]!;
  assert.deepEqual(container.envFrom?.map((from) => from.secretRef?.name), [secret!.metadata.name]);
  const known = new Set(Object.values(settings).map((setting) => setting.env));
  const keys = Object.keys(secret!['stringData'] as Record<string, string>);
  assert.deepEqual(keys.filter((key) => !known.has(key) && !key.startsWith('AWS_')), [], 'keys the collector would not read');
  assert.ok(keys.includes('STORAGE_URL') && keys.includes('PUBLISH_URL'), 'where crashes go, and where they are announced');
  const config = loadConfig(secret!['stringData'] as Record<string, string>);
  assert.equal(config.publishUrl?.kind, 'sqs', 'the example values are valid settings');
});

test('Kubernetes: Prometheus finds the metrics port: annotations on the pods, and a PodMonitor for the operator', () => {
  const set = new StatefulSet(manifests().find((manifest) => manifest.kind === 'StatefulSet') as never);
  const template = set.spec!.template;
  const container = template.spec!.containers[0]!;
  const metricsPort = container.ports!.find((port) => port.name === 'metrics')!;
  const env = new Map((container.env ?? []).map((variable) => [variable.name, variable.value ?? '']));
  assert.equal(String(metricsPort.containerPort), env.get('METRICS_PORT'));
  assert.deepEqual(template.metadata!.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': env.get('METRICS_PORT'), 'prometheus.io/path': '/metrics' });
  const [monitor] = yamlDocuments('kubernetes-podmonitor.yaml');
  assert.equal(monitor!['apiVersion'], 'monitoring.coreos.com/v1');
  assert.equal(monitor!.kind, 'PodMonitor');
  const spec = monitor!.spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
  assert.deepEqual(spec.selector.matchLabels, template.metadata!.labels, 'it selects the collector pods');
  assert.deepEqual(spec.podMetricsEndpoints.map((endpoint) => [endpoint.port, endpoint.path]), [['metrics', '/metrics']]);
});
