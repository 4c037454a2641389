/**
 * Why the collector cannot start, for the operator to act on: the setting at fault and what to do,
 * in one line. main.ts prints it and exits with code 2, which the shipped systemd unit does not
 * restart (`RestartPreventExitStatus=2`): starting again would fail the same way.
 */
export class CannotStart extends Error {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`${setting}: ${problem}`);
  }
}
