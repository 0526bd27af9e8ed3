import { setTimeout as sleep } from 'node:timers/promises';
import { PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { sizedBatches } from '../shared/sized-batches';

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
/** Firehose takes records of up to 1,000 KiB. */
export const MAX_FIREHOSE_RECORD_BYTES = 1000 * 1024;

/** Consecutive archive entries sent as one Firehose record: their lines, concatenated. */
interface PackedRecord {
  entries: ArchiveEntry[];
  data: Buffer;
}

/**
 * Archive lines to a Firehose delivery stream with PutRecordBatch. Consecutive lines are
 * packed into Firehose records of up to 1,000 KiB: Firehose bills every record rounded up
 * to a multiple of 5 KB, so one line (about 1.2 KB) per record would pay for four times its bytes, and
 * S3 receives the records' bytes concatenated, so packed lines are the same NDJSON (record
 * format conversion to Parquet reads several JSON documents in one record too). Calls
 * carry at most 500 records and 4 MiB. PutRecordBatch succeeds even when some of its
 * records were refused (`FailedPutCount` > 0, an `ErrorCode` on each refused entry): the
 * lines of those records, and of every record of a call that threw, are sent again with
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
        for (const call of calls(pack(pending))) failed.push(...(await send(call)));
        pending = failed.map(({ entry }) => entry);
      }
      return { archived: entries.length - failed.length, failed };
    },
  };

  async function send(call: readonly PackedRecord[]): Promise<ArchiveOutcome['failed']> {
    const refused = (record: PackedRecord, error: string) =>
      record.entries.map((entry) => ({ entry, error }));
    try {
      const out = await firehose.send(
        new PutRecordBatchCommand({
          DeliveryStreamName: deliveryStreamName,
          Records: call.map(({ data }) => ({ Data: data })),
        }),
      );
      if ((out.FailedPutCount ?? 0) === 0) return [];
      // Responses are in request order; a record with an ErrorCode was not taken.
      return call.flatMap((record, index) => {
        const response = out.RequestResponses?.[index];
        if (response?.ErrorCode === undefined && response?.RecordId !== undefined) return [];
        const error = response?.ErrorCode
          ? `${response.ErrorCode}: ${response.ErrorMessage ?? ''}`
          : 'no record id in the response';
        return refused(record, error);
      });
    } catch (error) {
      return call.flatMap((record) => refused(record, (error as Error).message));
    }
  }
}

/**
 * Packs consecutive entries into Firehose records within the record size limit, in order.
 * Each line is UTF-8 encoded once, straight into a scratch buffer the size of a record,
 * and each record's bytes are copied out of it once: a buffer per line and their
 * concatenation cost twice as much (BENCHMARKS 6).
 */
function pack(entries: readonly ArchiveEntry[]): PackedRecord[] {
  const records: PackedRecord[] = [];
  const scratch = Buffer.allocUnsafe(MAX_FIREHOSE_RECORD_BYTES);
  let current: ArchiveEntry[] = [];
  let bytes = 0;
  const close = () => {
    if (current.length > 0)
      records.push({ entries: current, data: Buffer.from(scratch.subarray(0, bytes)) });
    current = [];
    bytes = 0;
  };
  for (const entry of entries) {
    const { line } = entry;
    // A UTF-16 unit is at most 3 bytes of UTF-8: only a line near the end of the room needs a count.
    if (line.length * 3 > MAX_FIREHOSE_RECORD_BYTES - bytes) {
      const size = Buffer.byteLength(line);
      if (bytes + size > MAX_FIREHOSE_RECORD_BYTES) close();
      // archiveLine keeps a line within the limit; any other goes whole, for Firehose to refuse.
      if (size > MAX_FIREHOSE_RECORD_BYTES) {
        records.push({ entries: [entry], data: Buffer.from(line) });
        continue;
      }
    }
    current.push(entry);
    bytes += scratch.write(line, bytes);
  }
  close();
  return records;
}

/** Splits records into PutRecordBatch calls within the record and byte limits, in order. */
function calls(records: readonly PackedRecord[]): PackedRecord[][] {
  return sizedBatches(
    records,
    MAX_RECORDS_PER_CALL,
    MAX_BYTES_PER_CALL,
    (record) => record.data.length,
  );
}
