import type pg from 'pg';
import type { EngineLogger } from './logger';
import { PeriodicTask } from './periodic-task';
import { publicationNarrowing, PublicationNarrowedError } from './source-setup';
import type { StagingTable } from './staging-tables';

/** How often a streaming engine checks its publication when nothing else makes it look. */
export const DEFAULT_PUBLICATION_CHECK_MS = 10_000;

/**
 * The error for the engine's publication as it is now, or null when it publishes every
 * change of its tables ({@link publicationNarrowing}).
 */
export async function narrowedPublication(
  source: pg.ClientBase,
  publication: string,
  tables: readonly StagingTable[],
): Promise<PublicationNarrowedError | null> {
  const problems = await publicationNarrowing(source, publication);
  if (problems.length === 0) return null;
  return new PublicationNarrowedError(
    publication,
    problems,
    tables.map((table) => ({ schema: table.source.schema, table: table.source.table })),
  );
}

/**
 * Checks the engine's publication on a timer while it streams. The applier checks it at
 * every relation announcement too (pgoutput announces a table again before the first
 * change it sends after the publication changed), but a narrowing that filters every
 * change (a row filter no row passes, an operation left out of `publish`) sends nothing
 * to announce: without this it went unseen until the next start. Now it is found within
 * one interval and `narrowed` is told (the applier stops with it).
 *
 * A check still running when the next one is due is not doubled; a failed check is
 * logged, not thrown: a lost source connection is the stream's to report.
 */
export class PublicationWatch {
  private readonly task = new PeriodicTask(() => this.look());

  constructor(
    private readonly source: pg.ClientBase,
    private readonly publication: string,
    private readonly tables: readonly StagingTable[],
    private readonly logger: EngineLogger,
    private readonly narrowed: (error: PublicationNarrowedError) => void,
  ) {}

  /** Checks every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.task.start(Math.max(1, intervalMs));
  }

  /** Stops the timer and waits for a check in flight. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  private async look(): Promise<void> {
    try {
      const error = await narrowedPublication(this.source, this.publication, this.tables);
      if (error && this.task.active) this.narrowed(error);
    } catch (error) {
      this.logger.log('warn', 'publication check failed', { error: (error as Error).message });
    }
  }
}
