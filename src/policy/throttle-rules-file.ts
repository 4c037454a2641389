/**
 * `THROTTLE_RULES`: `accept_all`, `mozilla`, or the path of a JSON rules file. The file is
 * validated completely at start; a mistake stops the collector with a message naming the file,
 * the rule and the field, never a rule that silently matches nothing.
 *
 *   { "rules": [ { "name": "spam", "when": { "ProductName": "Spam" }, "then": "fakeaccept" }, … ] }
 *
 * A `when` matches when every key's condition holds. Conditions: a string (equals), a list of
 * strings (any of), or one of {"exists": bool}, {"regex": "…"}, {"prefix": "…"},
 * {"older_than_days": N} (a `YYYYMMDDhhmmss` build ID older than N days), {"not": condition}.
 * Only `exists` and `not` can match an annotation that is absent.
 */
import type { Annotations } from '../crash.js';
import { existsSync } from 'node:fs';
import { parseListDocument, readListFile } from './list-file.js';
import { buildIdOlderThan, MOZILLA_RULES } from './mozilla-rules.js';
import { annotationText } from '../report/annotation-text.js';
import { ACCEPT_EVERYTHING, RULE_NAME_PATTERN, type RuleAction, type ThrottleRule } from './throttler.js';

export class ThrottleRulesError extends Error {}

export const ACCEPT_ALL_RULES: readonly ThrottleRule[] = [{ name: ACCEPT_EVERYTHING, matches: () => true, then: 'accept' }];

type Condition = (value: string | undefined, now: Date) => boolean;

/** Where in the file a problem is, for the message. */
class Problem extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const describe = (value: unknown) => JSON.stringify(value) ?? String(value);

function condition(spec: unknown, field: string): Condition {
  if (typeof spec === 'string') return (value) => value === spec;
  if (Array.isArray(spec)) {
    if (spec.length === 0 || !spec.every((item) => typeof item === 'string')) {
      throw new Problem(field, `expected a non-empty list of strings, got ${describe(spec)}`);
    }
    const choices = new Set(spec as string[]);
    return (value) => value !== undefined && choices.has(value);
  }
  if (!isPlainObject(spec) || Object.keys(spec).length !== 1) {
    throw new Problem(
      field,
      `expected a string, a list of strings or one of {"exists": …}, {"regex": …}, {"prefix": …}, {"older_than_days": …}, {"not": …}; got ${describe(spec)}`,
    );
  }
  const [operator, operand] = Object.entries(spec)[0]!;
  const at = `${field}.${operator}`;
  switch (operator) {
    case 'exists':
      if (typeof operand !== 'boolean') throw new Problem(at, `expected true or false, got ${describe(operand)}`);
      return (value) => (value !== undefined) === operand;
    case 'regex': {
      if (typeof operand !== 'string') throw new Problem(at, `expected a regular expression as a string, got ${describe(operand)}`);
      let pattern: RegExp;
      try {
        pattern = new RegExp(operand, 'u');
      } catch (error) {
        throw new Problem(at, `invalid regular expression: ${(error as Error).message}`);
      }
      return (value) => value !== undefined && pattern.test(value);
    }
    case 'prefix':
      if (typeof operand !== 'string') throw new Problem(at, `expected a string, got ${describe(operand)}`);
      return (value) => value !== undefined && value.startsWith(operand);
    case 'older_than_days':
      if (typeof operand !== 'number' || !Number.isFinite(operand) || operand < 0) {
        throw new Problem(at, `expected a number of days (0 or more), got ${describe(operand)}`);
      }
      return (value, now) => value !== undefined && buildIdOlderThan(value, operand, now);
    case 'not': {
      const inner = condition(operand, at);
      return (value, now) => !inner(value, now);
    }
    default:
      throw new Problem(at, 'unknown condition; expected exists, regex, prefix, older_than_days or not');
  }
}

function when(spec: unknown): ThrottleRule['matches'] {
  if (!isPlainObject(spec)) throw new Problem('when', `expected an object of annotation conditions, got ${describe(spec)}`);
  const checks = Object.entries(spec).map(([key, conditionSpec]) => [key, condition(conditionSpec, `when.${key}`)] as const);
  return (annotations: Annotations, now: Date) => checks.every(([key, check]) => check(annotationText(annotations, key), now));
}

function action(spec: unknown): RuleAction {
  if (spec === 'accept' || spec === 'reject' || spec === 'fakeaccept') return spec;
  if (isPlainObject(spec) && Object.keys(spec).length === 1) {
    const [kind, percent] = Object.entries(spec)[0]!;
    if (kind === 'accept_percent' || kind === 'continue_percent') {
      if (typeof percent !== 'number' || !(percent >= 0 && percent <= 100)) {
        throw new Problem(`then.${kind}`, `expected a percentage 0..100, got ${describe(percent)}`);
      }
      return { percent, sampled: kind === 'accept_percent' ? 'accept' : 'continue' };
    }
  }
  throw new Problem(
    'then',
    `expected "accept", "reject", "fakeaccept", {"accept_percent": N} or {"continue_percent": N}; got ${describe(spec)}`,
  );
}

const RULE_FIELDS = new Set(['name', 'when', 'then']);

function rule(spec: unknown, seen: Set<string>): ThrottleRule {
  if (!isPlainObject(spec)) throw new Problem('', `expected an object with name, when and then, got ${describe(spec)}`);
  for (const field of Object.keys(spec)) {
    if (!RULE_FIELDS.has(field)) throw new Problem(field, 'unknown field; a rule has name, when and then');
  }
  const name = spec['name'];
  if (typeof name !== 'string' || !RULE_NAME_PATTERN.test(name)) {
    throw new Problem('name', `expected letters, digits and underscores, got ${describe(name)}`);
  }
  if (seen.has(name)) throw new Problem('name', `"${name}" is used by an earlier rule`);
  seen.add(name);
  if (!('when' in spec)) throw new Problem('when', 'missing; use {} to match every report');
  if (!('then' in spec)) throw new Problem('then', 'missing');
  return { name, matches: when(spec['when']), then: action(spec['then']) };
}

/** Parses a rules file's text; `source` names it in messages. */
export function parseThrottleRules(json: string, source: string): ThrottleRule[] {
  const specs = parseListDocument(json, source, 'rules', (message) => new ThrottleRulesError(message));
  const seen = new Set<string>();
  return specs.map((spec, index) => {
    try {
      return rule(spec, seen);
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      const name = isPlainObject(spec) && typeof spec['name'] === 'string' ? ` "${spec['name']}"` : '';
      const field = error.field === '' ? '' : ` field "${error.field}":`;
      throw new ThrottleRulesError(`${source}: rule #${index + 1}${name}:${field} ${error.message}`);
    }
  });
}

/** The rules `THROTTLE_RULES` names. */
export function loadThrottleRules(setting: string): readonly ThrottleRule[] {
  if (setting === 'accept_all') return ACCEPT_ALL_RULES;
  if (setting === 'mozilla') return MOZILLA_RULES;
  // Not a preset and no such file: perhaps a preset's name mistyped (`mozila`), so name them.
  const json = readListFile(setting, 'rules', (message) =>
    new ThrottleRulesError(existsSync(setting) ? message : `${message}; THROTTLE_RULES takes accept_all, mozilla or the path of a JSON rules file`),
  );
  return parseThrottleRules(json, setting);
}
