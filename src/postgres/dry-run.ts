import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  type DatabaseConnection,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
} from 'kysely';
import { ConnectionError, createPool, type PoolOptions } from './connect';

/** A kysely instance whose every change is undone, and the statements it ran. */
export interface DryRunKysely<DB> {
  readonly db: Kysely<DB>;
  /** Every statement sent, in order, with `$n` placeholders as sent. */
  readonly statements: readonly string[];
}

/**
 * A kysely instance on `url` whose work all happens inside one transaction that
 * `db.destroy()` rolls back, for "what would this do" runs (`migrate --dry-run`). The
 * code under test runs unchanged: its own transactions become savepoints of the outer
 * one, so what it reads is what it wrote, and nothing is committed.
 *
 * What a rollback cannot undo is not undone: sequence values drawn, and the locks the
 * statements take are held until the rollback (bounded by the session's
 * `lock_timeout` when they are waited for). Hand-written rather than a library: kysely
 * has no dry-run mode, and this is its documented Driver interface around its own
 * PostgreSQL driver.
 *
 * @example
 * ```ts
 * const { db, statements } = createDryRunKysely<unknown>(targetUrl, { label: 'target' });
 * try { await migrateTargetWith(db, config, tables); } finally { await db.destroy(); }
 * console.log(statements.join(';\n'));
 * ```
 */
export function createDryRunKysely<DB>(url: string, options: PoolOptions = {}): DryRunKysely<DB> {
  const pool = createPool(url, { ...options, max: 1 });
  const label = options.label ?? 'database';
  const statements: string[] = [];
  const dialect = new PostgresDialect({
    pool: {
      connect: () =>
        pool.connect().catch((error: unknown) => {
          throw new ConnectionError(label, url, error);
        }),
      end: () => pool.end(),
    },
  });
  const db = new Kysely<DB>({
    dialect: new RolledBackDialect(dialect),
    log: (event) => {
      // The driver's own BEGIN, savepoints and ROLLBACK are not the work being tried.
      if (!DRIVER_STATEMENT.test(event.query.sql)) statements.push(event.query.sql);
    },
  });
  return { db, statements };
}

/** A dialect whose driver keeps one connection in a transaction that is never committed. */
class RolledBackDialect implements Dialect {
  constructor(private readonly inner: Dialect) {}
  createDriver(): Driver {
    return new RolledBackDriver(this.inner.createDriver());
  }
  createQueryCompiler(): QueryCompiler {
    return this.inner.createQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return this.inner.createAdapter();
  }
  createIntrospector(db: Kysely<unknown>) {
    return this.inner.createIntrospector(db);
  }
}

const raw = (text: string) => CompiledQuery.raw(text);

const SAVEPOINT = 'audit_trail_dry_run_';
const DRIVER_STATEMENT = new RegExp(`^(BEGIN|ROLLBACK|.* ${SAVEPOINT}\\d+)$`);

class RolledBackDriver implements Driver {
  private connection: DatabaseConnection | null = null;
  private depth = 0;

  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  /** The one connection, opened in the outer transaction on first use. */
  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.connection === null) {
      const connection = await this.inner.acquireConnection();
      await connection.executeQuery(raw('BEGIN'));
      this.connection = connection;
    }
    return this.connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // Isolation and access mode cannot change mid-transaction; the outer one's apply.
    await connection.executeQuery(raw(`SAVEPOINT ${SAVEPOINT}${++this.depth}`));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(raw(`RELEASE SAVEPOINT ${SAVEPOINT}${this.depth--}`));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const name = `${SAVEPOINT}${this.depth--}`;
    await connection.executeQuery(raw(`ROLLBACK TO SAVEPOINT ${name}`));
    await connection.executeQuery(raw(`RELEASE SAVEPOINT ${name}`));
  }

  /** Kept for the next query: the outer transaction lives as long as the instance. */
  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) {
      try {
        await connection.executeQuery(raw('ROLLBACK'));
      } finally {
        await this.inner.releaseConnection(connection);
      }
    }
    await this.inner.destroy();
  }
}
