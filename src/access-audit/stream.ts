import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { ForgeryDetector, type LogItem } from './forgery';
import { createLogEntryParser, type AuditParserOptions } from './parser';
import type { AccessAuditPipeline, Classified } from './pipeline';
import { createRecordAssembler } from './records';

export type { LogItem } from './forgery';

/**
 * The lines of a stream, split on LF only: a carriage return is data, exactly as the
 * alert Lambda reads CloudWatch messages (Node's readline would also split on a lone CR,
 * letting a statement containing `\r` plus a fake prefix pass for a line of its own).
 */
export async function* readLines(input: Readable): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of input) {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    for (
      let newline = pending.indexOf('\n');
      newline >= 0;
      newline = pending.indexOf('\n', start)
    ) {
      yield pending.slice(start, newline);
      start = newline + 1;
    }
    pending = pending.slice(start);
  }
  pending += decoder.end();
  if (pending !== '') yield pending;
}

/** The complete records of a log stream in the given format. */
async function* readRecords(
  input: Readable,
  format: AuditParserOptions['logFormat'],
): AsyncGenerator<string> {
  const assembler = createRecordAssembler(format);
  for await (const line of readLines(input)) {
    const record = assembler.push(line);
    if (record !== undefined && record !== '') yield record;
  }
  const last = assembler.flush();
  if (last !== undefined && last !== '') yield last;
}

/**
 * Reads a PostgreSQL log (a file, stdin) and yields every pgAudit record in log
 * order: genuine records as events, forged ones (`RAISE LOG 'AUDIT: …'`) as
 * `forged`, unreadable ones as `unreadable`. Other lines are passed over.
 */
export async function* readAuditLog(
  input: Readable,
  options: AuditParserOptions = {},
): AsyncGenerator<RecordItem> {
  const parse = createLogEntryParser(options);
  const detector = new ForgeryDetector<undefined>();
  // Only the pipeline adds items it decided itself (pushDecided): none come out here.
  for await (const record of readRecords(input, options.logFormat)) {
    for (const { item } of detector.push(parse(record), undefined))
      if (item.kind !== 'decided') yield item;
  }
  for (const { item } of detector.flush()) if (item.kind !== 'decided') yield item;
}

/** A pgAudit record read from a log: genuine, forged or unreadable. */
export type RecordItem = Exclude<LogItem, { kind: 'decided' }>;

/** Runs a log stream through `pipeline` (what `pgaudit scan` does), yielding each outcome in log order. */
export async function* scanAuditLog(
  input: Readable,
  pipeline: AccessAuditPipeline,
): AsyncGenerator<Classified<undefined>> {
  for await (const record of readRecords(input, pipeline.logFormat))
    yield* pipeline.push(record, undefined);
  yield* pipeline.flush();
}
