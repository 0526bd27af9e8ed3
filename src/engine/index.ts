export { createEngine, defaultSlotName } from './engine';
export type { Engine, EngineOptions, EngineRunResult, EngineStatus } from './engine';
export { createJsonLogger, silentLogger } from './logger';
export type { EngineLogger, LogLevel } from './logger';
export { SchemaChangeError } from './relation-binding';
export { SourceSetupError } from './source-setup';
export { formatLsn, parseLsn } from './lsn';
