import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { AuditRecordError, createAuditParser, type AuditParserOptions } from './parser';
import { LogRecordAssembler } from './records';
import type { AuditEvent } from './types';

/** One item read from a PostgreSQL log: an event, or a pgAudit record that could not be read. */
export type LogItem =
  { kind: 'event'; event: AuditEvent } | { kind: 'error'; error: string; record: string };

/**
 * Reads a PostgreSQL stderr log (a file, stdin) line by line, joins continuation
 * lines and yields every pgAudit record as an event, in log order. Other lines are
 * passed over; unreadable pgAudit records are yielded as errors so callers can count them.
 */
export async function* readAuditLog(
  input: Readable,
  options: AuditParserOptions = {},
): AsyncGenerator<LogItem> {
  const parse = createAuditParser(options);
  const assembler = new LogRecordAssembler();
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    const record = assembler.push(line);
    if (record !== undefined) {
      const item = parseItem(parse, record);
      if (item !== undefined) yield item;
    }
  }
  const last = assembler.flush();
  if (last !== undefined) {
    const item = parseItem(parse, last);
    if (item !== undefined) yield item;
  }
}

/** Parses one record into a {@link LogItem}; `undefined` for a non-audit record. */
export function parseItem(
  parse: (record: string) => AuditEvent | undefined,
  record: string,
): LogItem | undefined {
  try {
    const event = parse(record);
    return event === undefined ? undefined : { kind: 'event', event };
  } catch (error) {
    if (error instanceof AuditRecordError) return { kind: 'error', error: error.message, record };
    throw error;
  }
}
