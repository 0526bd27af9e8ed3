import fc from 'fast-check';
import type { BinariesPostgres } from '../support/binaries-server';
import { SHORT_RUN_FEATURES } from '../support/oracle/arbitraries';
import { detectJitServer, startJitServer } from '../support/oracle/jit';
import { historyProperty } from '../support/oracle/property';
import type { PipelineKind } from '../support/oracle/scenario';
import { FIXED_SEEDS } from './short-run';

/**
 * Generated workloads against a server that JIT-compiles whatever it can (#17 item 18):
 * Debian's PostgreSQL 15 with LLVM, every jit threshold 0, pg_stat_statements tracking
 * nested statements. History must match the oracle as on the default server, and no
 * statement the kit ran (its sessions' own, and those inside its trigger functions,
 * whatever the applying session has set) may have been JIT-compiled; a probe proves the
 * server did JIT. Long run: `npm run fuzz -- --jit`.
 */
const jit = detectJitServer();
const RANDOM_SEED = Number(process.env.HISTORY_ORACLE_SEED ?? Date.now() % 2 ** 31);

// CI installs Debian's PostgreSQL 15 for the live pgAudit suite: there, a missing JIT
// server fails instead of skipping.
it.runIf(!jit.available && process.env.AUDIT_TRAIL_REQUIRE_PGAUDIT === '1')(
  'has a PostgreSQL with LLVM JIT to run the history oracle on',
  () => {
    throw new Error(jit.available ? '' : jit.reason);
  },
);

describe.skipIf(!jit.available)(
  jit.available
    ? 'history oracle on a target with JIT forced on'
    : `history oracle on a target with JIT forced on (skipped: ${jit.reason})`,
  () => {
    let server: BinariesPostgres;
    beforeAll(async () => {
      server = await startJitServer((jit as { bin: string }).bin);
      console.log(`history oracle JIT run: random seed ${RANDOM_SEED}`);
    }, 60_000);
    afterAll(() => server?.stop());

    for (const pipeline of ['engine', 'dms'] as PipelineKind[])
      for (const seed of [FIXED_SEEDS[0], RANDOM_SEED])
        it(`${pipeline} pipeline matches the oracle and JIT-compiles nothing of the kit's (seed ${seed})`, async () => {
          await fc.assert(
            historyProperty({
              adminUrl: server.url(),
              pipeline,
              features: SHORT_RUN_FEATURES,
              jit: true,
            }),
            { seed, numRuns: 1, endOnFailure: true },
          );
        }, 120_000);
  },
);
