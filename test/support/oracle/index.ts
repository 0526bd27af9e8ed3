/**
 * The history oracle: an independent reference trigger on the source and a comparator
 * that holds the kit's audit log against it change by change. See README "How history
 * is tested".
 */
export {
  ORACLE_SCHEMA,
  installOracle,
  refreshOracle,
  oracleMark,
  readOracleEvents,
  decodeValues,
} from './install';
export type { OracleTable, OracleEvent, EncodedValue } from './install';
export {
  DELIBERATE_DIFFERENCES,
  expectedHistory,
  changedColumns,
  canonicalKeyValue,
  keyOf,
} from './expected-history';
export type { ComparedTable, ExpectedVersion, TextRow } from './expected-history';
export { compareHistory, describeDifference } from './compare';
export type { CompareOptions, CompareReport, HistoryDifference, KitVersion } from './compare';
