/**
 * Runs an async task on a timer, never two at once: a run still going when the next is
 * due is not doubled, and {@link stop} waits for it. The engine's lag reporter and
 * publication watch share it; each catches its own task's errors (a failed check is
 * logged, never thrown).
 *
 * @example
 * const task = new PeriodicTask(async () => logger.log('info', 'tick'));
 * task.start(1_000);
 * // …
 * await task.stop();
 */
export class PeriodicTask {
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  /** True from {@link start} until {@link stop}: a run that ends after stop can tell. */
  get active(): boolean {
    return this.timer !== null;
  }

  /** Runs the task every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  /** Stops the timer and waits for a run in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.task().finally(() => (this.running = null));
  }
}
