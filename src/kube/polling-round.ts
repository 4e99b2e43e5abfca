// One round of work against the API server, run on demand and every poll interval until stopped. Calls made while
// a round is running share it, so a poll and an event (or two callers) never do the same writes twice.

export class PollingRound<T> {
  private running: Promise<T> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `onPollError` hears a failed polled round; a round run on demand fails to its caller instead. */
  constructor(
    private readonly round: () => Promise<T>,
    private readonly intervalMs: number,
    private readonly onPollError: (error: unknown) => void,
  ) {}

  run(): Promise<T> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The next round one interval from now, and so on after each. */
  poll(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.run()
        .catch(this.onPollError)
        .finally(() => this.poll());
    }, this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
