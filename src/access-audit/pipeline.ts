import type { AccessAuditConfig } from '../config/access-audit';
import { StatementTracker } from './duplicates';
import { ForgeryDetector, type LogItem, type TaggedItem } from './forgery';
import { forgedRecordAlert, unreadableRecordAlert } from './integrity';
import {
  createLogEntryParser,
  type AuditParserOptions,
  type LogEntryParser,
  type LogFormat,
} from './parser';
import { AccessRuleEngine, type RuleEngineConfig } from './rules';
import type { AuditEvent, Verdict } from './types';

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
 * check, the rule engine and the duplicate/conflict check, in that order. The alert
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
  private readonly scope: string;

  constructor(config: PipelineConfig, options: PipelineOptions = {}) {
    this.engine = new AccessRuleEngine(config);
    this.parse = createLogEntryParser(parserOptions(config));
    this.scope = options.scope ?? '';
    this.logFormat = config.logFormat ?? 'stderr';
  }

  /** Adds one complete log record; returns the records decided so far, in log order. */
  push(record: string, tag: T): Classified<T>[] {
    return this.classify(this.detector.push(this.parse(record), tag));
  }

  /** Decides the records still waiting (end of file or of a delivery). */
  flush(): Classified<T>[] {
    return this.classify(this.detector.flush());
  }

  private classify(items: TaggedItem<T>[]): Classified<T>[] {
    return items.length === 0 ? [] : items.map(({ item, tag }) => this.classifyItem(item, tag));
  }

  private classifyItem(item: LogItem, tag: T): Classified<T> {
    switch (item.kind) {
      case 'event':
        return {
          kind: 'verdict',
          event: item.event,
          verdict: this.tracker.apply(item.event, this.engine.evaluate(item.event), this.scope),
          tag,
        };
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
}

/** The parser options of a config section. */
export function parserOptions(config: PipelineConfig): AuditParserOptions {
  return {
    ...(config.logLinePrefix === undefined ? {} : { logLinePrefix: config.logLinePrefix }),
    ...(config.logFormat === undefined ? {} : { logFormat: config.logFormat }),
    ...(config.pgauditLogLevel === undefined ? {} : { pgauditLogLevel: config.pgauditLogLevel }),
  };
}
