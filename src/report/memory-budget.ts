/**
 * Admission control (I4): the report bytes that requests in flight hold in memory, summed over all
 * requests, never exceed the budget. The parser takes bytes as it buffers them; a request that
 * would cross the limit is refused with 503 (Overloaded) instead of growing the process.
 */
export class Overloaded extends Error {}

export class MemoryBudget {
  private used = 0;
  private requests = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /** When the last request closed its account (ms since epoch; 0: none yet). */
  lastRequestEndedAt = 0;

  /** Requests holding an account: reports being received right now. */
  get requestsInFlight(): number {
    return this.requests;
  }

  /** A per-request account; `close()` it when the request's bytes are no longer held. */
  open(): Reservation {
    this.requests += 1;
    return new Reservation(this);
  }

  /** @internal */
  closed(): void {
    this.requests -= 1;
    this.lastRequestEndedAt = Date.now();
  }

  /** @internal */
  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  /** @internal */
  give(bytes: number): void {
    this.used -= bytes;
  }
}

export class Reservation {
  private held = 0;
  private isOpen = true;

  constructor(private readonly budget: MemoryBudget) {}

  /** Throws Overloaded when the budget cannot cover `bytes` more. */
  take(bytes: number): void {
    if (!this.budget.tryTake(bytes)) throw new Overloaded(`in-flight memory budget of ${this.budget.limit} bytes exhausted`);
    this.held += bytes;
  }

  close(): void {
    this.budget.give(this.held);
    this.held = 0;
    if (this.isOpen) this.budget.closed();
    this.isOpen = false;
  }
}
