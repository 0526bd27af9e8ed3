// Shared by the functions that send in batches an AWS API limits by count and by total
// bytes (SQS SendMessageBatch, Firehose PutRecordBatch): a small module, so a function's
// bundle carries only what it uses.

/**
 * `items` in order, cut into batches of at most `most` items whose `sizeOf` totals at most
 * `bytes`; an item larger than `bytes` goes alone, for the API to refuse.
 */
export function sizedBatches<T>(
  items: readonly T[],
  most: number,
  bytes: number,
  sizeOf: (item: T) => number,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let taken = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length === most || (current.length > 0 && taken + size > bytes)) {
      batches.push(current);
      current = [];
      taken = 0;
    }
    current.push(item);
    taken += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
