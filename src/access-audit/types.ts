/**
 * Types of the access-audit pipeline: what the parser reads out of a pgAudit log
 * record and what the rule engine makes of it.
 */

/** pgAudit statement classes (`pgaudit.log`). Unknown future classes are kept as strings. */
export type AuditClass =
  'READ' | 'WRITE' | 'FUNCTION' | 'ROLE' | 'DDL' | 'MISC' | 'MISC_SET' | (string & {});

/** SESSION records come from `pgaudit.log`, OBJECT records from `pgaudit.role` grants. */
export type AuditType = 'SESSION' | 'OBJECT';

/**
 * What the PARAMETER field said: a list of bind values (`logged`), no parameters
 * (`<none>`), parameter logging off (`<not logged>`) or, with
 * `pgaudit.log_statement_once`, `<previously logged>`.
 */
export type ParameterStatus = 'logged' | 'none' | 'not-logged' | 'previously-logged';

/**
 * The values the log_line_prefix (or csvlog/jsonlog) carried; absent when the prefix has
 * no such escape or the process has no such value (a parallel or background worker has no
 * user, database or client), the same in every log format.
 */
export interface LogPrefixFields {
  /** Time stamp as logged (`%t`, `%m` or `%n`), e.g. `2026-11-22 22:39:36 UTC`. */
  timestamp?: string;
  /** Remote host (`%r`/`%h`); `[local]` for Unix-socket connections. */
  remoteHost?: string;
  /** Remote port (`%r`). */
  remotePort?: number;
  /** Role name (`%u`). */
  user?: string;
  /** Database name (`%d`). */
  database?: string;
  /** Backend process id (`%p`). */
  pid?: number;
  /**
   * The parallel group leader's process id, present only on a parallel worker's
   * records: `%P` in the prefix, csvlog's and jsonlog's `leader_pid` (PostgreSQL 14+).
   */
  leaderPid?: number;
  /** `application_name` (`%a`). */
  applicationName?: string;
  /** Session id (`%c`). */
  sessionId?: string;
  /**
   * True when a role or database name contains the literal that separates it from the
   * next prefix field (a role named `app_svc@x` under `%u@%d`), so the line can be
   * split more than one way. `user` and `database` are then the first split and must
   * not be trusted: the rule engine alerts (`ambiguous-identity`) and never excludes.
   * Never set for csvlog, jsonlog or Database Activity Streams, which are unambiguous.
   */
  identityAmbiguous?: boolean;
}

/** One pgAudit record, with every field typed. */
export interface AuditEvent extends LogPrefixFields {
  /** `timestamp` as ISO 8601 when the time zone is UTC/GMT or an offset; otherwise absent. */
  time?: string;
  /** Message severity, normally `LOG` (`pgaudit.log_level`). */
  severity: string;
  auditType: AuditType;
  /** Statement number, per backend process. */
  statementId: number;
  /** Sub-statement number within the statement (DO blocks, functions). */
  substatementId: number;
  auditClass: AuditClass;
  /** Command tag such as `SELECT`, `INSERT`, `GRANT`, `CREATE ROLE`. */
  command: string;
  /** `TABLE`, `INDEX`, `FUNCTION`, … or empty. */
  objectType: string;
  /** Schema-qualified object name, or empty (no relation, or `pgaudit.log_relation` off). */
  objectName: string;
  /** The statement text; passwords are `<REDACTED>` by pgAudit. */
  statement: string;
  parameterStatus: ParameterStatus;
  /** Bind values when `parameterStatus` is `logged`, otherwise empty. */
  parameters: string[];
  /** Rows read or written (`pgaudit.log_rows`), when logged. */
  rows?: number;
  /** Database Activity Streams only: the statement's exit code (non-zero: it failed). */
  exitCode?: number;
  /** Database Activity Streams only: the error a failed statement or login raised. */
  errorMessage?: string;
}

/** Why an event was classified as tool noise. */
export type NoiseReason = 'catalog-read' | 'session-command' | 'health-check';

/** How serious an alert is; carried as an SNS message attribute for filtering. */
export type AlertSeverity = 'low' | 'medium' | 'high' | 'critical';

/** An event that matched an alert rule. */
export interface AccessAlert {
  /** Name of the rule that matched. */
  rule: string;
  severity: AlertSeverity;
  /** Human-readable one-line summary: who did what where. */
  summary: string;
  event: AuditEvent;
  /**
   * `identity-change` only: the role the session acts as from this record on
   * (`DEFAULT` after RESET ROLE); pgAudit keeps logging the login role.
   */
  actingAs?: string;
  /**
   * `audit-tampering` of a substatement's record (a `DO` block's `PERFORM`, a function's
   * statement): the text of the statement it ran in (the block's, the call's), when the
   * log shows it (its record, same session and statement id). The act's dedup key reads
   * it, so the record keys as its block and the block's error do.
   */
  act?: string;
  /**
   * `audit-tampering-attempt` of an error inside a function or `DO` block: the texts the
   * server's CONTEXT may name as the statement its error ended (see `serverErrorOf`).
   */
  ended?: readonly string[];
}

/** What the rule engine decided for one event. */
export type Verdict =
  | { kind: 'alert'; alert: AccessAlert }
  | { kind: 'noise'; reason: NoiseReason }
  | {
      kind: 'excluded';
      reason:
        | 'service-account'
        | 'database'
        | 'schema'
        | 'ignore-rule'
        | 'duplicate'
        | 'parallel-worker'
        /**
         * An `audit-tampering` record of a statement the server then ended with an error:
         * its alert is the `audit-tampering-attempt` alert that follows, which carries it.
         */
        | 'attempt';
      rule?: string;
      /** `parallel-worker` only: the pid of the leader whose record this one was folded into. */
      leaderPid?: number;
    }
  | { kind: 'pass' }
  /** The liveness canary's own record (see `canary.ts`): proof the pipeline works, never an alert. */
  | { kind: 'canary'; nonce: string };
