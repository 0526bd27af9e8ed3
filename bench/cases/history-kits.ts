/**
 * What the history tools (#14: history-gc, history-bytes, history-replay, history-ab,
 * history-spikes) share, not a bench case: the history case's audit log on a server of its
 * own, each checkout's history API loaded from its own files, and rounds of each
 * checkout's run in a child process of its own, the checkouts interleaved round by round.
 * (history-tail keeps its own start: it times the rows' generation alone.)
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { generateAuditRows, migratedHistoryTarget, startHistoryServer } from './history';

/** The history case's log: its source and target, and how many keys the rows are over. */
export interface HistoryLog {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly keys: number;
}

/**
 * The history case's server, with a migrated target holding `rows` generated audit rows
 * (context on), given to `work`; the server is stopped after, whatever `work` did.
 */
export async function withHistoryLog<T>(
  rows: number,
  work: (log: HistoryLog) => Promise<T>,
): Promise<T> {
  const server = await startHistoryServer();
  try {
    const { sourceUrl, targetUrl } = await migratedHistoryTarget(server);
    const keys = await generateAuditRows(targetUrl, rows);
    return await work({ sourceUrl, targetUrl, keys });
  } finally {
    await server.stop();
  }
}

/**
 * The options of a tool that runs kits in rounds (`parseArgs`): `--kit DIR` (repeatable),
 * `--rows N` of the case's log (300,000 by default), and `--child URL`, which
 * {@link runKitRounds} passes to the tool's own file run as a kit's child.
 */
export const KIT_TOOL_OPTIONS = {
  kit: { type: 'string', multiple: true },
  rows: { type: 'string', default: '300000' },
  child: { type: 'string' },
} as const;

/** One child run of a kit in a round: the child's own arguments, and its label in the output. */
export interface KitRun {
  readonly args: readonly string[];
  /** Printed after the kit's directory (` idle 40s`); none by default. */
  readonly label?: string;
}

export interface KitRounds {
  /**
   * The tool's own file (`__filename`), run again as the child with `--child <target URL>
   * --kit <absolute DIR>` and each run's arguments; the child prints one result.
   */
  readonly script: string;
  readonly kits: readonly string[];
  readonly rows: number;
  readonly rounds: number;
  /** Node's flags for the child, before `--import tsx`. */
  readonly nodeFlags?: readonly string[];
  /** What a round is called in the output (`round`, or `pair`). */
  readonly roundName?: string;
  /** The runs of each kit in a round, each a child of its own; one, with no arguments, by default. */
  readonly runs?: readonly KitRun[];
}

/**
 * The history case's log ({@link withHistoryLog}), then `rounds` x kits x runs children,
 * the kits interleaved within each round so the machine's load falls on all alike; prints
 * `<round> <n> <kit><label>: <the child's output>` a run.
 */
export async function runKitRounds(options: KitRounds): Promise<void> {
  const runs = options.runs ?? [{ args: [] }];
  await withHistoryLog(options.rows, async ({ targetUrl }) => {
    for (let round = 0; round < options.rounds; round++) {
      for (const kit of options.kits) {
        for (const run of runs) {
          const output = execFileSync(
            process.execPath,
            [
              ...(options.nodeFlags ?? []),
              ...['--import', 'tsx', options.script],
              ...['--child', targetUrl, '--kit', path.resolve(kit), ...run.args],
            ],
            { encoding: 'utf8' },
          );
          console.log(
            `${options.roundName ?? 'round'} ${round + 1} ${kit}${run.label ?? ''}: ${output.trim()}`,
          );
        }
      }
    }
  });
}

/**
 * Checkout `root`'s connection and history API: from its built `dist/` (as an installed
 * package runs) or its `src/` (under tsx, as the bench runs the kit).
 */
export async function importKitHistory(
  root: string,
  from: 'dist' | 'src',
): Promise<{
  createKysely: typeof import('../../src/postgres/connect').createKysely;
  createHistory: typeof import('../../src/history').createHistory;
}> {
  const module = (name: string) =>
    from === 'dist'
      ? path.join(root, 'dist/src', `${name}.js`)
      : path.join(root, 'src', `${name}.ts`);
  const { createKysely } = (await import(
    module('postgres/connect')
  )) as typeof import('../../src/postgres/connect');
  const { createHistory } = (await import(
    module('history/index')
  )) as typeof import('../../src/history');
  return { createKysely, createHistory };
}
