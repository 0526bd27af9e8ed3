import type { Command } from '@commander-js/extra-typings';
import type pg from 'pg';
import { CliError, UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';

/** A logical replication slot on the source, as `slot list` reports it. */
export interface SlotInfo {
  readonly name: string;
  readonly plugin: string;
  readonly database: string;
  readonly active: boolean;
  readonly activePid: number | null;
  readonly confirmedFlushLsn: string | null;
  /** Bytes of WAL the slot keeps on the server (as text: exact beyond 2^53). */
  readonly retainedWalBytes: string | null;
  readonly walStatus: string | null;
}

async function listSlots(client: pg.Client): Promise<SlotInfo[]> {
  const { rows } = await client.query<SlotInfo>(
    `SELECT slot_name AS name, plugin, database, active, active_pid AS "activePid",
            confirmed_flush_lsn::text AS "confirmedFlushLsn",
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint::text AS "retainedWalBytes",
            wal_status AS "walStatus"
       FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`,
  );
  return rows;
}

async function withSource<T>(url: string | undefined, work: (client: pg.Client) => Promise<T>) {
  const { connectClient } = await import('../../postgres/connect.js');
  const client = await connectClient(requireUrl(url, '--source-url'), 'audit-trail', 'source');
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * `audit-trail slot list|drop`: the logical replication slots on the source, and
 * dropping the engine's slot (with its publication) when the engine is retired.
 */
export function registerSlot(program: Command): void {
  const slot = program
    .command('slot')
    .description('inspect or drop the engine’s replication slot on the source');

  slot
    .command('list')
    .description('list the logical replication slots on the source with their retained WAL')
    .addOption(sourceUrlOption())
    .addOption(jsonOption('the slots'))
    .action(async (options) => {
      const slots = await withSource(options.sourceUrl, listSlots);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(slots)}\n`);
        return;
      }
      if (slots.length === 0) process.stdout.write('no logical replication slots\n');
      for (const s of slots) {
        process.stdout.write(
          `${s.name}  ${s.active ? `active (pid ${s.activePid})` : 'inactive'}  db ${s.database}  ` +
            `confirmed ${s.confirmedFlushLsn ?? '-'}  retains ${s.retainedWalBytes ?? '-'} bytes` +
            `${s.walStatus ? `  wal ${s.walStatus}` : ''}\n`,
        );
      }
    });

  slot
    .command('drop')
    .description('drop the engine’s slot and publication (the engine must then reload)')
    .argument('[name]', 'slot name (default: derived from the URLs, as replicate does)')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(targetUrlOption())
    .option('--yes', 'really drop it')
    .option('--force', 'also when a process is streaming from it (its connection is ended)')
    .addOption(jsonOption())
    .action(async (name, options) => {
      const { loadConfig } = await import('../../config/index.js');
      const { defaultSlotName } = await import('../../engine/index.js');
      const { dropSlotIfExists } = await import('../../engine/source-setup.js');
      const { quoteIdent } = await import('../../postgres/identifiers.js');
      const config = await loadConfig(options.config);
      const sourceUrl = requireUrl(options.sourceUrl, '--source-url');
      const slotName =
        name ??
        defaultSlotName(
          sourceUrl,
          requireUrl(options.targetUrl, '--target-url (or give the slot name)'),
          config.auditSchema,
        );
      await withSource(sourceUrl, async (client) => {
        const found = (await listSlots(client)).find((s) => s.name === slotName);
        if (!found)
          throw new CliError(`no replication slot named ${slotName} on the source`, {
            code: 'SLOT_NOT_FOUND',
            hint: 'audit-trail slot list shows the slots there are',
          });
        if (!options.yes)
          throw new UsageError(
            `would drop slot ${slotName} (retaining ${found.retainedWalBytes ?? '?'} bytes of WAL); ` +
              'the engine then has to reload its tables',
            { code: 'CONFIRMATION_NEEDED', hint: 'add --yes to drop it' },
          );
        if (found.active && !options.force)
          throw new CliError(`slot ${slotName} is in use by pid ${found.activePid}`, {
            code: 'SLOT_IN_USE',
            hint: 'stop the engine first, or add --force to end its connection',
          });
        await dropSlotIfExists(client, slotName);
        await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(slotName)}`);
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ droppedSlot: slotName, droppedPublication: slotName, retainedWalBytes: found.retainedWalBytes })}\n`
            : `dropped slot ${slotName} and its publication\n`,
        );
      });
    });
}
