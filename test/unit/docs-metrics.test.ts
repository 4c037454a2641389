/**
 * docs/METRICS.md stays true: one row per metric the collector exports (its type, labels and
 * help as in src/metrics.ts) and, for each, exactly the alerts of deploy/prometheus-rules.yml
 * whose expression reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createMetrics } from '../../src/metrics.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('docs/METRICS.md has a row for every metric, with its type, labels, meaning and the alerts that read it', () => {
  const rules = readFileSync(`${ROOT}deploy/prometheus-rules.yml`, 'utf8');
  const alerts = [...rules.matchAll(/- alert: (\w+)\n\s+(?:#[^\n]*\n\s+)*expr: ([^\n]+)/g)].map((match) => ({ name: match[1]!, expr: match[2]! }));
  assert.ok(alerts.length >= 10, `${alerts.length} alerts read`);
  const expected = createMetrics()
    .registry.getMetricsAsArray()
    .filter((metric) => metric.name.startsWith('crashspool_'))
    .map((metric) => {
      const labels = ((metric as { labelNames?: string[] }).labelNames ?? []).map((label) => `\`${label}\``).join(', ') || '—';
      const used = alerts.filter((alert) => new RegExp(`\\b${metric.name}\\b`).test(alert.expr)).map((alert) => `\`${alert.name}\``).join(', ') || '—';
      return `| \`${metric.name}\` | ${metric.type} | ${labels} | ${metric.help.replaceAll('|', '\\|')} | ${used} |`;
    });
  const documented = readFileSync(`${ROOT}docs/METRICS.md`, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('| `crashspool_'));
  assert.deepEqual(documented, expected);
});
