/**
 * How long migrate waits for a lock on a kit table by default (`MigrateTargetOptions.lockTimeout`,
 * `migrate --lock-timeout`), in its own module so the CLI can show it without loading migrate.
 */
export const MIGRATE_LOCK_TIMEOUT = '30s';
