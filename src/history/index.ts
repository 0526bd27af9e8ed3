export * from './types';
export * from './diff';
export * from './history';
export { LosslessNumber, parseRowJson, stringifyRowJson } from './row-json';
export * from './schema-changes';
