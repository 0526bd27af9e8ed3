import { setTimeout as sleep } from 'node:timers/promises';
import { PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';

/** One line for the archive, tagged with the Kinesis record (position in the batch) it came from. */
export interface ArchiveEntry {
  record: number;
  line: string;
}

/** What became of a batch of archive lines. */
export interface ArchiveOutcome {
  /** Lines Firehose accepted. */
  archived: number;
  /** Lines still refused after every attempt, with the last error of each. */
  failed: { entry: ArchiveEntry; error: string }[];
}

/** Writes archive lines; tests and `das decode` can stand in for Firehose. */
export interface ArchiveWriter {
  put(entries: readonly ArchiveEntry[]): Promise<ArchiveOutcome>;
}

/** Options of {@link firehoseArchive}. */
export interface FirehoseArchiveOptions {
  /** Calls per line before it is given up (and its Kinesis record reported). @default 4 */
  maxAttempts?: number;
  /** First pause before a retry, doubled each time. @default 100 */
  baseDelayMs?: number;
}

/** PutRecordBatch takes at most 500 records and 4 MiB per call. */
const MAX_RECORDS_PER_CALL = 500;
const MAX_BYTES_PER_CALL = 4 * 1024 * 1024;

/**
 * Archive lines to a Firehose delivery stream with PutRecordBatch, one Firehose record
 * per line, in calls of at most 500 records and 4 MiB. PutRecordBatch succeeds even when
 * some of its records were refused (`FailedPutCount` > 0, an `ErrorCode` on each refused
 * entry): those entries, and every entry of a call that threw, are sent again with
 * exponential backoff, and whatever is still refused after `maxAttempts` is returned in
 * `failed`, never dropped.
 *
 * @example
 * const archive = firehoseArchive(new FirehoseClient({}), 'audit-trail-das-archive');
 * const { failed } = await archive.put([{ record: 0, line: '{"event_id":…}\n' }]);
 */
export function firehoseArchive(
  firehose: FirehoseClient,
  deliveryStreamName: string,
  options: FirehoseArchiveOptions = {},
): ArchiveWriter {
  const maxAttempts = options.maxAttempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 100;
  return {
    async put(entries) {
      let pending = [...entries];
      let failed: ArchiveOutcome['failed'] = [];
      for (let attempt = 1; pending.length > 0 && attempt <= maxAttempts; attempt++) {
        if (attempt > 1) await sleep(baseDelayMs * 2 ** (attempt - 2));
        failed = [];
        for (const call of calls(pending)) failed.push(...(await send(call)));
        pending = failed.map(({ entry }) => entry);
      }
      return { archived: entries.length - failed.length, failed };
    },
  };

  async function send(call: readonly ArchiveEntry[]): Promise<ArchiveOutcome['failed']> {
    try {
      const out = await firehose.send(
        new PutRecordBatchCommand({
          DeliveryStreamName: deliveryStreamName,
          Records: call.map(({ line }) => ({ Data: Buffer.from(line) })),
        }),
      );
      if ((out.FailedPutCount ?? 0) === 0) return [];
      // Responses are in request order; an entry with an ErrorCode was not taken.
      return call.flatMap((entry, index) => {
        const response = out.RequestResponses?.[index];
        if (response?.ErrorCode === undefined && response?.RecordId !== undefined) return [];
        const error = response?.ErrorCode
          ? `${response.ErrorCode}: ${response.ErrorMessage ?? ''}`
          : 'no record id in the response';
        return [{ entry, error }];
      });
    } catch (error) {
      return call.map((entry) => ({ entry, error: (error as Error).message }));
    }
  }
}

/** Splits entries into PutRecordBatch calls within the record and byte limits, in order. */
function calls(entries: readonly ArchiveEntry[]): ArchiveEntry[][] {
  const result: ArchiveEntry[][] = [];
  let current: ArchiveEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.line);
    if (
      current.length === MAX_RECORDS_PER_CALL ||
      (current.length > 0 && bytes + size > MAX_BYTES_PER_CALL)
    ) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) result.push(current);
  return result;
}
