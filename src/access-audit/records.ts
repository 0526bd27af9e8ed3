import type { LogFormat } from './parser';

/** Joins physical log lines (split on LF only) into complete log records. */
export interface RecordAssembler {
  /** Adds one physical line; returns the record it completed, if any. */
  push(line: string): string | undefined;
  /** Returns the last record, at end of input. */
  flush(): string | undefined;
}

/**
 * stderr logs: PostgreSQL writes a multi-line message as its first line with the
 * prefix, then one line per further line that begins with a TAB and has no prefix.
 * CloudWatch Logs delivers the whole record as one event with embedded `\n\t`. Both
 * come out as the original text with plain `\n`. A carriage return is data (PostgreSQL
 * adds the TAB only after LF), so it never ends a line.
 */
export class LogRecordAssembler implements RecordAssembler {
  private pending: string | undefined;

  push(line: string): string | undefined {
    if (line.charCodeAt(0) === 9) {
      // A continuation without a first line (file cut mid-record) is dropped with it.
      if (this.pending !== undefined) this.pending += `\n${line.slice(1)}`;
      return undefined;
    }
    const done = this.pending;
    this.pending = line;
    return done;
  }

  flush(): string | undefined {
    const done = this.pending;
    this.pending = undefined;
    return done;
  }
}

/** csvlog: a row ends at a line break outside quotes (quoted fields keep their line breaks). */
class CsvRecordAssembler implements RecordAssembler {
  private pending: string | undefined;
  private openQuote = false;

  push(line: string): string | undefined {
    this.pending = this.pending === undefined ? line : `${this.pending}\n${line}`;
    if (countQuotes(line) % 2 === 1) this.openQuote = !this.openQuote;
    if (this.openQuote) return undefined;
    return this.flush();
  }

  flush(): string | undefined {
    const done = this.pending;
    this.pending = undefined;
    this.openQuote = false;
    return done;
  }
}

/** jsonlog: one JSON object per line (line breaks inside values are escaped). */
class JsonRecordAssembler implements RecordAssembler {
  push(line: string): string | undefined {
    return line;
  }

  flush(): undefined {
    return undefined;
  }
}

function countQuotes(line: string): number {
  let count = 0;
  for (let at = line.indexOf('"'); at >= 0; at = line.indexOf('"', at + 1)) count++;
  return count;
}

/** The record assembler for a log format. */
export function createRecordAssembler(format: LogFormat = 'stderr'): RecordAssembler {
  switch (format) {
    case 'stderr':
      return new LogRecordAssembler();
    case 'csvlog':
      return new CsvRecordAssembler();
    case 'jsonlog':
      return new JsonRecordAssembler();
  }
}

/**
 * Splits a text (a log file chunk or one CloudWatch event message) into records,
 * on LF only. `pgaudit scan` and the alert Lambda both read records this way.
 */
export function splitLogRecords(text: string, format: LogFormat = 'stderr'): string[] {
  const records: string[] = [];
  const assembler = createRecordAssembler(format);
  let start = 0;
  while (start <= text.length) {
    let newline = text.indexOf('\n', start);
    if (newline < 0) newline = text.length;
    const line = text.slice(start, newline);
    start = newline + 1;
    if (line === '' && start > text.length) break;
    const record = assembler.push(line);
    if (record !== undefined && record !== '') records.push(record);
  }
  const last = assembler.flush();
  if (last !== undefined && last !== '') records.push(last);
  return records;
}
