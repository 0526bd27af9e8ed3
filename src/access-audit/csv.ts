/** Thrown when pgAudit's CSV text is cut short or badly quoted. */
export class CsvError extends Error {
  override readonly name = 'CsvError';
}

/**
 * Splits one CSV record as pgAudit writes it: fields are quoted only when they
 * contain a comma, quote, CR or LF, and quotes inside are doubled. Quoted fields may
 * span lines. Scans with `indexOf`, so long statements cost one pass and no regex.
 * @throws CsvError for an unterminated quote or text after a closing quote.
 */
export function splitCsv(text: string, start = 0, end = text.length): string[] {
  const fields: string[] = [];
  let pos = start;
  for (;;) {
    if (pos < end && text.charCodeAt(pos) === 34) {
      pos = readQuoted(text, pos, end, fields);
    } else {
      let comma = text.indexOf(',', pos);
      if (comma < 0 || comma > end) comma = end;
      fields.push(text.slice(pos, comma));
      pos = comma;
    }
    if (pos >= end) return fields;
    if (text.charCodeAt(pos) !== 44)
      throw new CsvError(`unexpected text after a quoted field at offset ${pos - start}`);
    pos++;
    if (pos === end) {
      fields.push('');
      return fields;
    }
  }
}

/** Reads `"..."` starting at `pos`, pushes the unquoted value, returns the offset after it. */
function readQuoted(text: string, pos: number, end: number, fields: string[]): number {
  let value = '';
  let from = pos + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0 || quote >= end) throw new CsvError('unterminated quoted field');
    if (quote + 1 < end && text.charCodeAt(quote + 1) === 34) {
      value += text.slice(from, quote + 1);
      from = quote + 2;
      continue;
    }
    fields.push(value + text.slice(from, quote));
    return quote + 1;
  }
}
