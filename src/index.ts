/**
 * audit-trail kit: the library entry point. The CLI (`audit-trail`) is built on these.
 */
export * from './config';
export * from './history';
export { migrateTarget, migrateTargetWith, MigrationError } from './migrate/migrate-target';
export type { MigrateTargetOptions, MigrateReport } from './migrate/migrate-target';
export { introspectSourceTables, SourceTableError } from './migrate/introspect';
export type { SourceTable, SourceColumn } from './migrate/introspect';
export * from './staging/header-columns';
export {
  createKysely,
  createPool,
  assertPostgresUrl,
  ConnectionError,
  ConnectionUrlError,
} from './postgres/connect';
export { startLocalPostgres } from './postgres/local-server';
export type { LocalPostgres, LocalPostgresOptions } from './postgres/local-server';
export { createDataApiKysely, DataApiDialect, DataApiError, DataApiValueError } from './data-api';
export type { DataApiTarget } from './data-api';
export * from './engine';
export * from './verify';
export * from './source-context';
export { DEFAULT_PROGRESS_INTERVAL_MS, loggedProgress, noProgress } from './support/progress';
export type {
  LoggedProgressOptions,
  ProgressReporter,
  ProgressTask,
  ProgressUnit,
} from './support/progress';
