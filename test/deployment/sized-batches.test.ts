import { describe, expect, it } from 'vitest';
import { sizedBatches } from '../../src/lambda/shared/sized-batches';

/** Each item's size is the item itself. */
const batches = (items: number[], most: number, bytes: number) =>
  sizedBatches(items, most, bytes, (item) => item);

describe('sizedBatches: the SQS and Firehose batches, within a count and a byte limit', () => {
  it('cuts at the count limit even when the bytes would allow more', () => {
    expect(batches([1, 1, 1, 1, 1, 1, 1], 3, 1000)).toEqual([[1, 1, 1], [1, 1, 1], [1]]);
  });

  it('cuts before the item that would take a batch past the byte limit, and fills up to it', () => {
    expect(batches([4, 6, 1, 9, 5, 5], 10, 10)).toEqual([
      [4, 6],
      [1, 9],
      [5, 5],
    ]);
  });

  it('sends an item larger than the byte limit alone, and keeps the order', () => {
    expect(batches([2, 30, 3, 4], 10, 10)).toEqual([[2], [30], [3, 4]]);
    expect(batches([30, 2], 10, 10)).toEqual([[30], [2]]);
    expect(batches([], 10, 10)).toEqual([]);
  });
});
