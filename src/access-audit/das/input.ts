/**
 * The DAS record texts in a captured file: a JSON array of DAS records, the output
 * of `aws kinesis get-records` (`{ "Records": [{ "Data": base64 }] }`), or a Lambda
 * Kinesis event (`{ "Records": [{ "kinesis": { "data": base64 } }] }`). An entry of
 * another shape is passed on as its JSON, so the decoder reports it as a failure.
 */
export function dasRecordTexts(file: unknown): string[] {
  const entries: unknown[] = Array.isArray(file)
    ? file
    : isObject(file) && Array.isArray(file['Records'])
      ? file['Records']
      : [file];
  return entries.map(recordText);
}

function recordText(entry: unknown): string {
  if (typeof entry === 'string') return entry;
  if (isObject(entry)) {
    if (typeof entry['Data'] === 'string') return fromBase64(entry['Data']);
    const kinesis = entry['kinesis'];
    if (isObject(kinesis) && typeof kinesis['data'] === 'string')
      return fromBase64(kinesis['data']);
  }
  return JSON.stringify(entry) ?? 'undefined';
}

function fromBase64(data: string): string {
  return Buffer.from(data, 'base64').toString('utf8');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
