/**
 * How long migrate waits for a lock on a kit table by default (`MigrateTargetOptions.lockTimeout`,
 * `migrate --lock-timeout`), in its own module so the CLI can show it without loading migrate.
 */
export const MIGRATE_LOCK_TIMEOUT = '30s';

/**
 * How long migrate waits, before changing a staging table's shape, for a running engine
 * or DMS task to confirm the source's position (`MigrateTargetOptions.catchUpTimeoutMs`,
 * `migrate --catch-up-timeout`): an idle consumer confirms on the server's keepalive,
 * every `wal_sender_timeout / 2`.
 */
export const MIGRATE_CATCH_UP_TIMEOUT_MS = 60_000;
