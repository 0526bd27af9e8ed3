import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KIT_MIGRATIONS } from '../../migrations/target';
import { packageRoot } from '../support/package-root';
import { renderTriggerSql, TRIGGER_SQL_FILES } from './sql-files';

/** What a kit version installs on the target, as {@link kitVersionOf} reads it. */
export interface KitContents {
  /** The package version. */
  readonly packageVersion: string;
  /** Names of the versioned migrations, in order. */
  readonly migrations: readonly string[];
  /**
   * Repeatable SQL file → its text as {@link renderTriggerSql} renders it for one fixed
   * audit schema (the placeholders' values, such as the pinned output settings, come
   * from TypeScript: a change to them is a change to what `migrate` installs).
   */
  readonly sqlFiles: Readonly<Record<string, string>>;
}

/**
 * A short hash of what `migrate` installs. The CDK custom resource that runs the
 * migrations carries it as a property, so upgrading the package changes the resource and
 * `cdk deploy` runs the migrations (CloudFormation re-runs a custom resource only when
 * its properties change).
 */
export function kitVersionOf(contents: KitContents): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([contents.packageVersion, contents.migrations]));
  for (const [file, text] of Object.entries(contents.sqlFiles).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    hash.update(`\u0000${file}\u0000${text}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** {@link kitVersionOf} this package. */
export function currentKitVersion(): string {
  const root = packageRoot();
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    version: string;
  };
  return kitVersionOf({
    packageVersion: version,
    migrations: KIT_MIGRATIONS.map((migration) => migration.name),
    sqlFiles: Object.fromEntries(
      TRIGGER_SQL_FILES.map((file) => [file, renderTriggerSql(file, 'audit')]),
    ),
  });
}
