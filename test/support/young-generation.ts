import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

/**
 * Bytes left in V8's young generation after a minor collection: what survived it (a
 * survivor stays in the young generation once). The tests that hold node-postgres's
 * results to dying young (young-results, young-statements) read this after dropping them.
 */
export function youngAfterMinorGc(): number {
  gc({ type: 'minor' });
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!
    .space_used_size;
}
