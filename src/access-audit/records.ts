/**
 * Joins physical log lines into log records. PostgreSQL writes a multi-line message
 * as its first line with the prefix, then one line per further line that begins with
 * a TAB and has no prefix. CloudWatch Logs delivers the whole record as one event
 * with embedded `\n\t`. Both come out as the original text with plain `\n`.
 */
export class LogRecordAssembler {
  private pending: string | undefined;

  /** Adds one physical line; returns the record it completed, if any. */
  push(rawLine: string): string | undefined {
    const line = stripCarriageReturn(rawLine);
    if (line.charCodeAt(0) === 9) {
      // A continuation without a first line (file cut mid-record) is dropped with it.
      if (this.pending !== undefined) this.pending += `\n${line.slice(1)}`;
      return undefined;
    }
    const done = this.pending;
    this.pending = line;
    return done;
  }

  /** Returns the last record, at end of input. */
  flush(): string | undefined {
    const done = this.pending;
    this.pending = undefined;
    return done;
  }
}

function stripCarriageReturn(line: string): string {
  return line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

/** Splits a text (a log file chunk or one CloudWatch event message) into records. */
export function splitLogRecords(text: string): string[] {
  const records: string[] = [];
  const assembler = new LogRecordAssembler();
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
