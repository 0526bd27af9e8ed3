import type { BenchCase } from '.';
import { startServers } from '../lib/servers';
import { createWorkloadTables } from '../lib/workload';
import { runSourceOverhead } from './source-overhead';
import { createCapture } from '../lib/engine-capture';

/** Case 1 wiring: servers, workload tables, the kit installed on the target, then A–E. */
export const sourceCase: BenchCase = {
  title:
    'source overhead: no audit / kit capture / source trigger / decoding floor / deferred capture',
  figures: [
    'source_tps_ratio_capture_vs_none',
    'source_tps_ratio_capture_vs_trigger',
    'source_tps_ratio_trigger_vs_none',
    'source_tps_ratio_capture_vs_floor',
    'source_tps_ratio_deferred_vs_none',
    'catchup_changes_per_s',
  ],
  async run(ctx) {
    const servers = await startServers();
    try {
      const sourceUrl = await servers.source.createDatabase('bench_source');
      const targetUrl = await servers.target.createDatabase('bench_target');
      await createWorkloadTables(sourceUrl, ctx.profile.sourceAccounts);
      const capture = await createCapture(ctx, {
        sourceUrl,
        targetUrl,
        tables: ['accounts', 'tellers', 'movements'],
      });
      try {
        ctx.log('  initial load of the workload tables into staging');
        if (capture.driver) await capture.driver.catchUp();
        const result = await runSourceOverhead(ctx, {
          sourceUrl,
          capture: capture.driver,
          captureMissing: capture.missing,
        });
        return {
          figures: result.figures,
          detail: { ...result.detail, sourceServer: servers.sourceVersion },
        };
      } finally {
        await capture.driver?.close();
      }
    } finally {
      await servers.stop();
    }
  },
};
