import { replicateArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, dropSlot, type Pipeline } from './helpers';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

// The engine's slot vanished (dropped by hand, or by max_slot_wal_keep_size) after the
// target applied changes from it: the changes in between are lost. replicate refuses
// with SLOT_GONE, says what to do, and exits 1 (built binary).
describe('replicate when its slot is gone', () => {
  let p: Pipeline;
  afterAll(async () => p?.dispose());

  it('stops with SLOT_GONE, the applied position and the remedy as a hint', async () => {
    p = await createPipeline('CREATE TABLE items (id int PRIMARY KEY, name text)', CONFIG);
    await p.source(`INSERT INTO items VALUES (1, 'one')`);
    await p.replicate();
    await dropSlot(p.sourceUrl, p.slotName);
    const configFile = await writeConfig(CONFIG);
    const run = await runCli(replicateArgs(configFile, p, '--until-idle'));
    expect(run.stderr).toMatch(
      new RegExp(
        `^audit-trail: error \\[SLOT_GONE\\]: replication slot "${p.slotName}" is gone but the target has applied up to [0-9A-F]+/[0-9A-F]+: changes since then are lost\\n` +
          '  hint: delete the row for this slot from audit\\.cdc_engine_position and clear the staging tables to reload; raise max_slot_wal_keep_size if the server dropped it\\n$',
        'm',
      ),
    );
    expect(run.code).toBe(1);
  });
});
