import { stringifyRowJson } from '../../history/row-json';
import type { IntegrityReport } from '../../trust/integrity';
import type { VerifyReport } from '../../verify';
import { describeForeignDependency } from '../../verify/foreign-dependencies';
import { printable } from '../../support/printable';
import type { ReloadState } from '../../staging/reload-baseline';

/** A report a person reads at a glance: one line per table, then each mismatch. */
export function formatReport(report: VerifyReport): string {
  const lines = report.tables.flatMap((table) => [
    `${table.mismatches === 0 && !table.reloadPending && !table.captureTriggers ? 'OK  ' : 'FAIL'} ${table.table}: ${table.sourceRows} source rows, ` +
      `${table.auditRows} live audit rows, ${table.stagingRows} live staging rows, ${table.mismatches} mismatches`,
    ...(table.reloadPending
      ? [`  ${table.table}: ${reloadPendingLine(table.table, table.reloadPending)}`]
      : []),
    ...(table.captureTriggers ?? []).map((problem) => `  ${table.table}: ${problem}`),
  ]);
  for (const finding of report.foreignDependencies ?? [])
    lines.push(
      `FAIL ${finding.side} ${printable(describeForeignDependency(finding))} → ${printable(finding.remedy)}`,
    );
  for (const mismatch of report.mismatches) {
    const detail = mismatch.columns
      ? ` (columns: ${mismatch.columns.join(', ')})`
      : mismatch.detached
        ? ` (left with partition ${mismatch.partition}, detached: ${DETACHED_ROWS_HINT})`
        : mismatch.partition
          ? ` (in partition ${mismatch.partition}: ${attachedRowsHint(mismatch.partition)})`
          : '';
    lines.push(`  ${mismatch.table} ${stringifyRowJson(mismatch.key)}: ${mismatch.kind}${detail}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A table added back whose reload has not ended, and what ends it: the operator once DMS
 * loaded it, or, when no load copied a row, a reload (or `--all-rows-gone` when the
 * source table really holds none of the rows history has live).
 */
export function reloadPendingLine(table: string, state: ReloadState): string {
  const held = `reload pending: ${state.baselineKeys} row(s) still read as live that no load has copied`;
  if (state.copiedRows > 0)
    return (
      `${held} (the load copied ${state.copiedRows}); once the DMS task's table statistics say ` +
      `"Table completed", run audit-trail reload finish ${table} (it records a DELETE for each)`
    );
  return (
    `${held}, and the load copied no row (a DMS task running CDC only, or one that did not load ` +
    `the table again): no change ends it. Reload the table (remove it from the config, run ` +
    `audit-trail migrate, add it back, run migrate, then audit-trail task reload ${table}); if ` +
    `the source table really holds none of those rows any more, run audit-trail reload finish ` +
    `${table} --all-rows-gone`
  );
}

/**
 * Why a partition's row can be missing from history, and what records it: a table's rows
 * at ATTACH PARTITION (and rows written before the DMS mapping selected the partition)
 * are no change in the WAL, so neither DMS nor the engine captured them.
 */
function attachedRowsHint(partition: string): string {
  return (
    'rows a table held when it was attached as a partition, or written before the DMS mapping ' +
    'selected the partition, are no change and were never captured; with DMS, once the mapping ' +
    `selects it: audit-trail task reload ${partition} (copies them as SNAPSHOT versions); the ` +
    'local engine loads them when it meets the partition on a PostgreSQL 15 or later source, ' +
    'except on a slot that already had the partition when the kit was upgraded to record ' +
    'loaded partitions; on 13 and 14, reload the partitioned table (remove it from the ' +
    'config, run audit-trail migrate, add it back and run migrate)'
  );
}

/**
 * Why a row of a detached partition is still live in history: DETACH PARTITION moves rows
 * out of the table without a change in the WAL, and what records them as gone.
 */
const DETACHED_ROWS_HINT =
  'DETACH PARTITION took the row out of the table without a change (none in the WAL, none ' +
  "a row trigger on the table sees), so history keeps the row's last version; to record " +
  'the rows as gone, reload the table: remove it from the config, run audit-trail migrate, ' +
  'add it back and run migrate (the local engine records a DELETE for each)';

/** One summary line, then each listed finding, first broken first. */
export function formatIntegrityReport(report: IntegrityReport): string {
  const head = report.head
    ? `head block ${report.head.blockNo} ${report.head.blockHash}`
    : 'no chain';
  const pruned =
    report.prunedThroughBlock === null
      ? ''
      : `, retention pruned through block ${report.prunedThroughBlock}`;
  const lines = [
    `${report.ok ? 'OK  ' : 'FAIL'} audit log chain: ${report.blocks} blocks, ${report.rows} rows, ${head}${pruned}, ${report.anchorsChecked} anchors checked`,
    ...report.findings.map((finding) => `  ${finding.kind}: ${finding.detail}`),
  ];
  if (report.findingCount > report.findings.length)
    lines.push(`  ... and ${report.findingCount - report.findings.length} more`);
  return `${lines.join('\n')}\n`;
}
