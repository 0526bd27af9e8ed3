/**
 * The kysely history API, typed by your own row types: the questions an auditor asks
 * about one row. Run it against a target the kit has migrated (for example while
 * `audit-trail replicate` runs beside it):
 *
 * ```sh
 * AUDIT_TRAIL_TARGET_URL=postgres://auditor@target/audit npx tsx examples/history-queries.ts 42
 * ```
 */
import { createHistory, createKysely } from 'audit-trail-kit';

/** Your source table's row, as the history API returns it (numeric comes back as text). */
interface Tables {
  'public.items': { id: number; name: string; price: string };
}

/** Prints what happened to one item: every version, who and why, and its state an hour ago. */
export async function explainItem(
  targetUrl: string,
  itemId: number,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  const db = createKysely(targetUrl);
  try {
    const history = createHistory<Tables>(db, { auditSchema: 'audit' });
    const versions = await history.history('public.items', { id: itemId });
    for (const [index, version] of versions.entries()) {
      const who = version.context ? ` by ${version.context.actor ?? '?'}` : '';
      const changes = index === 0 ? [] : history.diff(versions[index - 1]!, version);
      const what = changes.map(
        (change) => `${change.column}: ${String(change.from)} -> ${String(change.to)}`,
      );
      out.write(`${version.commitTimestamp} ${version.operation}${who} ${what.join(', ')}\n`);
    }
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const before = await history.asOf('public.items', [itemId], hourAgo);
    out.write(`as of ${hourAgo}: ${before ? JSON.stringify(before) : 'did not exist'}\n`);
    const last = versions.at(-1);
    if (last?.transactionId) {
      const together = await history.transaction(last.transactionId);
      out.write(`its last transaction ${last.transactionId} changed ${together.length} row(s)\n`);
    }
  } finally {
    await db.destroy();
  }
}

if (require.main === module) {
  const url = process.env.AUDIT_TRAIL_TARGET_URL;
  const id = Number(process.argv[2]);
  if (!url || !Number.isInteger(id)) {
    process.stderr.write(
      'usage: AUDIT_TRAIL_TARGET_URL=… tsx examples/history-queries.ts ITEM_ID\n',
    );
    process.exitCode = 2;
  } else {
    explainItem(url, id).catch((error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 2;
    });
  }
}
