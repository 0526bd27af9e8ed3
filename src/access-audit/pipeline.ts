import type { AccessAuditConfig } from '../config/access-audit';
import { AttemptFolder } from './attempts';
import { StatementTracker } from './duplicates';
import { FailedStatementReader, type Completed } from './failed-statements';
import { ForgeryDetector, type LogItem, type TaggedItem } from './forgery';
import { forgedRecordAlert, unexpectedLevelAlert, unreadableRecordAlert } from './integrity';
import {
  createLogEntryParser,
  severityOf,
  type AuditParserOptions,
  type LogEntryParser,
  type LogFormat,
} from './parser';
import { ParallelWorkerFolder } from './parallel-workers';
import { prefixLogsLeaderPid } from './prefix';
import { AccessRuleEngine, summarize, type RuleEngineConfig } from './rules';
import type { AuditEvent, Verdict } from './types';

const NO_ITEMS: never[] = [];

/** The settings the pipeline reads; a validated `accessAudit` section has them all. */
export type PipelineConfig = RuleEngineConfig &
  Partial<Pick<AccessAuditConfig, 'logLinePrefix' | 'logFormat' | 'pgauditLogLevel'>>;

/**
 * The outcome for one record: a verdict on an event (genuine, forged or unreadable
 * with a readable prefix), or an unreadable record nobody can be named for.
 */
export type Classified<T> =
  | {
      kind: 'verdict';
      event: AuditEvent;
      verdict: Verdict;
      /** Why the record could not be read, for `unreadable-audit-record` alerts. */
      error?: string;
      tag: T;
    }
  | { kind: 'unreadable'; error: string; record: string; tag: T };

/** Options for {@link AccessAuditPipeline}. */
export interface PipelineOptions {
  /** Separates sources whose pids may collide (the Lambda passes the log stream). @default "" */
  readonly scope?: string;
}

/**
 * Log records in, verdicts out: parsing for the configured log format, the forgery
 * check, the rule engine, the duplicate/conflict check, the folding of parallel
 * workers' records into their leader's (see {@link ParallelWorkerFolder}) and of a
 * refused statement's records into its attempt alert (see {@link AttemptFolder}), in
 * that order. The alert
 * Lambda and `audit-trail pgaudit scan` both run exactly this, so the CLI shows what
 * would page.
 *
 * @example
 * const pipeline = new AccessAuditPipeline(parseAccessAuditConfig({ serviceAccounts: ['app'] }));
 * for (const record of splitLogRecords(text)) for (const out of pipeline.push(record, undefined)) …;
 * for (const out of pipeline.flush()) …;
 */
export class AccessAuditPipeline<T = undefined> {
  readonly engine: AccessRuleEngine;
  /** The log format records are read in (split records with `splitLogRecords(text, logFormat)`). */
  readonly logFormat: LogFormat;
  private readonly parse: LogEntryParser;
  private readonly detector = new ForgeryDetector<T>();
  private readonly tracker = new StatementTracker();
  private readonly failures: FailedStatementReader<T>;
  private readonly scope: string;
  private readonly workers: ParallelWorkerFolder<Classified<T>>;
  /** Asks the tracker for a substatement's block only for a tampering record: off the hot path. */
  private readonly folder = new AttemptFolder<T>((event) =>
    this.tracker.topLevelStatement(event, this.scope),
  );
  private readonly errorWaits = (pid: number | undefined) => this.failures.waitsFor(pid);
  /** The severity word of `pgauditLogLevel`: records at another one alert. */
  private readonly severity: string;

  constructor(config: PipelineConfig, options: PipelineOptions = {}) {
    this.engine = new AccessRuleEngine(config);
    this.parse = parserFor(parserOptions(config));
    this.scope = options.scope ?? '';
    this.logFormat = config.logFormat ?? 'stderr';
    this.severity = severityOf(config.pgauditLogLevel ?? 'log');
    this.failures = new FailedStatementReader(this.logFormat === 'stderr');
    // csvlog and jsonlog (PostgreSQL 14+) always carry leader_pid; stderr only with %P.
    const leaderPidLogged =
      this.logFormat !== 'stderr' || prefixLogsLeaderPid(config.logLinePrefix);
    this.workers = new ParallelWorkerFolder(leaderPidLogged, (outcome, verdict) => ({
      ...outcome,
      verdict,
    }));
  }

  /** Adds one complete log record; returns the records decided so far, in log order. */
  push(record: string, tag: T): Classified<T>[] {
    const entry = this.parse(record);
    const failures = this.failures.push(entry, tag);
    const attempts = failures.length === 0 ? NO_ITEMS : this.attempts(failures);
    const ready = this.classify(
      attempts.length === 0
        ? this.detector.push(entry, tag)
        : [...attempts, ...this.detector.push(entry, tag)],
    );
    return this.folder.passesThrough(ready)
      ? ready
      : this.folder.push(ready, entry, this.errorWaits);
  }

  /** Decides the records still waiting (end of file or of a delivery). */
  flush(): Classified<T>[] {
    const attempts = this.attempts(this.failures.flush());
    const ready = this.classify([...attempts, ...this.detector.flush()]);
    this.workers.flush(ready);
    return this.folder.flush(ready);
  }

  /** The refused attempts to weaken the audit among failed statements, in their place in log order. */
  private attempts(failures: Completed<T>[]): TaggedItem<T>[] {
    const items: TaggedItem<T>[] = [];
    for (const { failure, tag } of failures) {
      const alert = this.engine.evaluateFailure(failure);
      if (alert !== undefined)
        items.push(
          ...this.detector.pushDecided(
            { kind: 'decided', event: alert.event, verdict: { kind: 'alert', alert } },
            tag,
          ),
        );
    }
    return items;
  }

  private classify(items: TaggedItem<T>[]): Classified<T>[] {
    const ready: Classified<T>[] = [];
    for (const { item, tag } of items) {
      const outcome = this.classifyItem(item, tag);
      if (item.kind === 'event' && outcome.kind === 'verdict')
        this.workers.push(outcome, outcome, ready);
      else this.workers.pass(outcome, ready);
    }
    return ready;
  }

  private classifyItem(item: LogItem, tag: T): Classified<T> {
    switch (item.kind) {
      case 'event':
        return {
          kind: 'verdict',
          event: item.event,
          verdict: this.tracker.apply(item.event, this.judge(item.event), this.scope),
          tag,
        };
      case 'relayed':
        // Not judged and not tracked: its statement id is the worker's, and the worker's
        // own record (folded into the leader's) is the one that counts.
        return {
          kind: 'verdict',
          event: item.event,
          verdict: {
            kind: 'excluded',
            reason: 'parallel-worker',
            ...(item.event.pid === undefined ? {} : { leaderPid: item.event.pid }),
          },
          tag,
        };
      case 'decided':
        return { kind: 'verdict', event: item.event, verdict: item.verdict, tag };
      case 'forged':
        return {
          kind: 'verdict',
          event: item.event,
          verdict: { kind: 'alert', alert: forgedRecordAlert(item.event, item.context) },
          tag,
        };
      case 'unreadable':
        if (item.event === undefined)
          return { kind: 'unreadable', error: item.error, record: item.record, tag };
        return {
          kind: 'verdict',
          event: item.event,
          verdict: { kind: 'alert', alert: unreadableRecordAlert(item.event, item.error) },
          error: item.error,
          tag,
        };
    }
  }

  /**
   * The rule engine's verdict, or for a record at another severity than the configured
   * level, `unexpected-audit-level`: whatever the record is (noise, a service account's,
   * the canary's), the audit is no longer logging where it was set up to.
   */
  private judge(event: AuditEvent): Verdict {
    const verdict = this.engine.evaluate(event);
    if (event.severity === this.severity) return verdict;
    const alert = verdict.kind === 'alert' ? verdict.alert : undefined;
    return {
      kind: 'alert',
      alert: unexpectedLevelAlert(
        event,
        this.severity,
        alert?.summary ?? summarize(event),
        alert?.severity ?? 'low',
      ),
    };
  }
}

/** The last parser built for a pipeline, and the options it was built for. */
let lastParser: { readonly key: string; readonly parse: LogEntryParser } | undefined;

/**
 * The parser for `options`: the previous pipeline's when its options were the same (the
 * Lambda builds a pipeline per invocation, the bench one per round). A parser keeps no
 * state between records. A new one per pipeline is a new function each time, and V8 threw
 * away the pipeline's optimized `push` at each ("wrong call target") and compiled it again
 * (BENCHMARKS 5, hparse3: -3.4% instructions a line over 20,000-line pipelines).
 */
function parserFor(options: AuditParserOptions): LogEntryParser {
  const key = JSON.stringify(options);
  if (lastParser?.key !== key) lastParser = { key, parse: createLogEntryParser(options) };
  return lastParser.parse;
}

/** The parser options of a config section. */
export function parserOptions(config: PipelineConfig): AuditParserOptions {
  return {
    ...(config.logLinePrefix === undefined ? {} : { logLinePrefix: config.logLinePrefix }),
    ...(config.logFormat === undefined ? {} : { logFormat: config.logFormat }),
    ...(config.pgauditLogLevel === undefined ? {} : { pgauditLogLevel: config.pgauditLogLevel }),
  };
}
