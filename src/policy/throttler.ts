/**
 * Antenna's throttler: an ordered list of rules, the first whose condition matches decides what
 * happens to a report. Pure logic over the annotations; the randomness and the clock are passed in
 * so every rule can be tested exactly.
 */
import type { Annotations } from '../crash.js';
import { annotationText } from '../report/annotation-text.js';

/** accept: store it; reject: answer `Discarded=rule_<name>`, store nothing; fakeaccept: answer a crash ID, store nothing. */
export type Verdict = 'accept' | 'reject' | 'fakeaccept';

/**
 * What a matching rule does. A sampled rule draws a number in [0, 100): at or below `percent` it
 * takes `sampled` (`continue` goes on to the next rule, as Antenna's CONTINUE), above it rejects.
 */
export type RuleAction = Verdict | { percent: number; sampled: 'accept' | 'continue' };

export interface ThrottleRule {
  /** Letters, digits and underscores (it becomes part of `Discarded=rule_<name>` and a metric label). */
  name: string;
  matches(annotations: Annotations, now: Date): boolean;
  then: RuleAction;
}

export interface ThrottleDecision {
  verdict: Verdict;
  rule: string;
}

/** Used when no rule matches (Antenna's ACCEPT_ALL rule name). */
export const ACCEPT_EVERYTHING = 'accept_everything';

export const RULE_NAME_PATTERN = /^[a-z0-9_]+$/i;

export class Throttler {
  constructor(
    readonly rules: readonly ThrottleRule[],
    private readonly random: () => number = Math.random,
    private readonly now: () => Date = () => new Date(),
  ) {}

  decide(annotations: Annotations): ThrottleDecision {
    const now = this.now();
    for (const rule of this.rules) {
      if (!rule.matches(annotations, now)) continue;
      const action = rule.then;
      if (typeof action === 'string') return { verdict: action, rule: rule.name };
      // Antenna: `random() * 100 <= percent` takes the sampled result.
      if (this.random() * 100 > action.percent) return { verdict: 'reject', rule: rule.name };
      if (action.sampled === 'accept') return { verdict: 'accept', rule: rule.name };
    }
    return { verdict: 'accept', rule: ACCEPT_EVERYTHING };
  }
}
