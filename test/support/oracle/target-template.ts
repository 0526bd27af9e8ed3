import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { parseConfig } from '../../../src/config';
import { currentKitVersion } from '../../../src/migrate/kit-version';
import { migrateTargetWith } from '../../../src/migrate/migrate-target';
import { createKysely } from '../../../src/postgres/connect';
import { quoteIdent } from '../../../src/postgres/identifiers';

/** Per audit schema, the template this process found or built. */
const templates = new Map<string, Promise<string>>();

/**
 * The name of a database with the kit installed in `auditSchema` and no table yet, built
 * once per server (and kit) and copied for each scenario's target (`CREATE DATABASE ...
 * TEMPLATE`): the kit's migrations are the same for every scenario, so a scenario's own
 * migrate only creates its staging tables, as on any installed target. A fresh install
 * is test/migrate's to test; the build runs the same code (`migrateTargetWith`) for
 * every audit schema the workloads use, hostile names included.
 *
 * Test processes share it: one builds under an advisory lock while the others wait, and
 * it is ready once it is a template. Its name covers the kit version, the migrations'
 * sources and the server's start, so a changed kit or a restarted server builds anew.
 */
export function installedTargetTemplate(
  admin: pg.Client,
  adminUrl: string,
  auditSchema: string,
): Promise<string> {
  let template = templates.get(auditSchema);
  if (template === undefined) {
    template = findOrBuild(admin, adminUrl, auditSchema);
    templates.set(auditSchema, template);
    // A failed build is tried again by the next scenario, not remembered.
    template.catch(() => templates.delete(auditSchema));
  }
  return template;
}

async function findOrBuild(
  admin: pg.Client,
  adminUrl: string,
  auditSchema: string,
): Promise<string> {
  const { rows } = await admin.query<{ started: string }>(
    'SELECT pg_postmaster_start_time()::text AS started',
  );
  const name = `orkit_${createHash('sha256')
    .update([currentKitVersion(), migrationSources(), rows[0]!.started, auditSchema].join('\u0000'))
    .digest('hex')
    .slice(0, 20)}`;
  await admin.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
  try {
    const { rows: found } = await admin.query<{ ready: boolean }>(
      'SELECT datistemplate AS ready FROM pg_database WHERE datname = $1',
      [name],
    );
    if (found[0]?.ready) return name;
    // A build a killed run left unfinished.
    if (found.length > 0) await admin.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const target = createKysely<unknown>(url.toString(), { max: 1, label: 'target' });
    try {
      // The config's table is not looked at: no source table is given.
      await migrateTargetWith(
        target,
        parseConfig({ auditSchema, tables: [{ table: 'none' }] }),
        [],
      );
    } finally {
      await target.destroy();
    }
    // No session may be connected to a database while it is copied.
    await admin.query(
      `ALTER DATABASE ${quoteIdent(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`,
    );
    return name;
  } finally {
    await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
  }
}

/** The text of every versioned migration (their names alone are in the kit version). */
function migrationSources(): string {
  const dir = path.join(__dirname, '..', '..', '..', 'migrations', 'target');
  return readdirSync(dir)
    .sort()
    .map((file) => `${file}\u0000${readFileSync(path.join(dir, file), 'utf8')}`)
    .join('\u0000');
}
