export * from './dialect';
export { DataApiValueError, EXACT_RESULT_OPTIONS, fromField, toSqlParameter } from './values';
