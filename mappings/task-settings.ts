import type { AuditTrailConfig } from '../src/config';
import { resolveDeployment, type DmsConfig } from '../src/config/deployment';
import { kitLogins } from '../src/trust/logins';

/** DMS log components whose severity the kit sets (the rest keep DMS's default). */
const LOG_COMPONENTS = [
  'SOURCE_UNLOAD',
  'SOURCE_CAPTURE',
  'TARGET_LOAD',
  'TARGET_APPLY',
  'TASK_MANAGER',
] as const;

/** The subset of DMS task settings the kit sets; everything else keeps DMS's default. */
export interface TaskSettings {
  readonly TargetMetadata: {
    readonly TargetSchema: string;
    readonly SupportLobs: boolean;
    readonly FullLobMode: boolean;
    readonly LobChunkSize: number;
    readonly LimitedSizeLobMode: boolean;
    readonly LobMaxSize: number;
    readonly InlineLobMaxSize: number;
    readonly BatchApplyEnabled: false;
    readonly TaskRecoveryTableEnabled: boolean;
  };
  readonly FullLoadSettings: {
    readonly TargetTablePrepMode: 'DO_NOTHING';
    readonly CreatePkAfterFullLoad: false;
    readonly StopTaskCachedChangesApplied: false;
    readonly StopTaskCachedChangesNotApplied: false;
    readonly MaxFullLoadSubTasks: number;
    readonly TransactionConsistencyTimeout: number;
    readonly CommitRate: number;
  };
  readonly Logging: {
    readonly EnableLogging: true;
    readonly LogComponents: readonly { readonly Id: string; readonly Severity: string }[];
  };
  readonly ControlTablesSettings: {
    readonly ControlSchema: string;
    readonly HistoryTimeslotInMinutes: number;
    readonly HistoryTableEnabled: boolean;
    readonly SuspendedTablesTableEnabled: boolean;
    readonly StatusTableEnabled: boolean;
  };
  readonly ChangeProcessingTuning: {
    readonly BatchApplyPreserveTransaction: true;
    readonly MinTransactionSize: number;
    readonly CommitTimeout: number;
    readonly MemoryLimitTotal: number;
    readonly MemoryKeepTime: number;
    readonly StatementCacheSize: number;
  };
  readonly ChangeProcessingDdlHandlingPolicy: {
    readonly HandleSourceTableDropped: false;
    readonly HandleSourceTableTruncated: false;
    readonly HandleSourceTableAltered: false;
  };
  readonly ErrorBehavior: {
    readonly DataErrorPolicy: 'STOP_TASK';
    readonly DataTruncationErrorPolicy: 'STOP_TASK';
    readonly TableErrorPolicy: 'STOP_TASK';
    readonly ApplyErrorInsertPolicy: 'INSERT_RECORD';
    readonly ApplyErrorUpdatePolicy: 'STOP_TASK';
    readonly ApplyErrorDeletePolicy: 'STOP_TASK';
    readonly ApplyErrorEscalationPolicy: 'STOP_TASK';
    readonly RecoverableErrorCount: number;
    readonly RecoverableErrorInterval: number;
    readonly RecoverableErrorThrottling: boolean;
    readonly FailOnNoTablesCaptured: true;
  };
  readonly ValidationSettings: {
    readonly EnableValidation: boolean;
    readonly ValidationMode: 'ROW_LEVEL';
    readonly ThreadCount: number;
    readonly FailureMaxCount: number;
    readonly HandleCollationDiff: boolean;
  };
  readonly FailTaskWhenCleanTaskResourceFailed: false;
}

/**
 * Builds the replication task settings for a config. The choices that matter for an
 * audit trail, each forced by a DMS fact:
 * - `TargetTablePrepMode: DO_NOTHING`: the kit's migrations own the staging tables (with
 *   their triggers); DMS must neither drop nor truncate them.
 * - `BatchApplyEnabled: false`: batch apply nets several changes of a row into one and
 *   would lose versions.
 * - `ApplyErrorInsertPolicy: INSERT_RECORD`: re-inserting a key whose staging row is kept
 *   as deleted (indicator `D`) updates that row instead of failing.
 * - Every other data, truncation, table or apply error **stops the task**
 *   (`STOP_TASK`): logging the error or suspending the table would leave a silent gap in
 *   the history while the task keeps running. A stopped task raises a DMS `failure` event
 *   (the alarm topic); nothing is skipped, and `audit-trail task start` retries from the
 *   same position once the cause is fixed.
 * - full LOB mode by default: json, jsonb and text arrive as LOBs, and limited LOB mode
 *   silently truncates values over `LobMaxSize`.
 * - CloudWatch logging on (needs the account's `dms-cloudwatch-logs-role`).
 * - DDL on the source is not replayed onto staging (`HandleSourceTableAltered: false`):
 *   staging changes go through the kit's migrations, which also adjust the trigger.
 */
export function buildTaskSettings(config: AuditTrailConfig): TaskSettings {
  const dms: DmsConfig = resolveDeployment(config.deployment).dms;
  const fullLob = dms.lobMode === 'full';
  return {
    TargetMetadata: {
      TargetSchema: '',
      SupportLobs: true,
      FullLobMode: fullLob,
      LobChunkSize: 64,
      LimitedSizeLobMode: !fullLob,
      LobMaxSize: fullLob ? 0 : dms.lobMaxSizeKb,
      InlineLobMaxSize: fullLob ? dms.inlineLobMaxSizeKb : 0,
      BatchApplyEnabled: false,
      TaskRecoveryTableEnabled: false,
    },
    FullLoadSettings: {
      TargetTablePrepMode: 'DO_NOTHING',
      CreatePkAfterFullLoad: false,
      StopTaskCachedChangesApplied: false,
      StopTaskCachedChangesNotApplied: false,
      MaxFullLoadSubTasks: 8,
      TransactionConsistencyTimeout: 600,
      CommitRate: 10_000,
    },
    Logging: {
      EnableLogging: true,
      LogComponents: LOG_COMPONENTS.map((id) => ({ Id: id, Severity: 'LOGGER_SEVERITY_DEFAULT' })),
    },
    ControlTablesSettings: {
      // awsdms_apply_exceptions (failed changes) lands in the DMS login's own schema: the
      // writer role may not create anything in the audit schema.
      ControlSchema: kitLogins(config).dms,
      HistoryTimeslotInMinutes: 5,
      HistoryTableEnabled: false,
      SuspendedTablesTableEnabled: false,
      StatusTableEnabled: false,
    },
    ChangeProcessingTuning: {
      BatchApplyPreserveTransaction: true,
      // Several source transactions may share one target transaction: history comes from
      // the header columns, never from the target's now()/txid.
      MinTransactionSize: 1000,
      CommitTimeout: 1,
      MemoryLimitTotal: 1024,
      MemoryKeepTime: 60,
      StatementCacheSize: 50,
    },
    ChangeProcessingDdlHandlingPolicy: {
      HandleSourceTableDropped: false,
      HandleSourceTableTruncated: false,
      HandleSourceTableAltered: false,
    },
    ErrorBehavior: {
      DataErrorPolicy: 'STOP_TASK',
      DataTruncationErrorPolicy: 'STOP_TASK',
      TableErrorPolicy: 'STOP_TASK',
      ApplyErrorInsertPolicy: 'INSERT_RECORD',
      ApplyErrorUpdatePolicy: 'STOP_TASK',
      ApplyErrorDeletePolicy: 'STOP_TASK',
      ApplyErrorEscalationPolicy: 'STOP_TASK',
      RecoverableErrorCount: -1,
      RecoverableErrorInterval: 5,
      RecoverableErrorThrottling: true,
      FailOnNoTablesCaptured: true,
    },
    ValidationSettings: {
      EnableValidation: dms.validation,
      ValidationMode: 'ROW_LEVEL',
      ThreadCount: 5,
      FailureMaxCount: 10_000,
      HandleCollationDiff: false,
    },
    FailTaskWhenCleanTaskResourceFailed: false,
  };
}
