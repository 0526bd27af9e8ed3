export { createEngine, defaultSlotName } from './engine';
export type { Engine, EngineOptions, EngineRunResult, EngineStatus } from './engine';
export { createJsonLogger, silentLogger } from './logger';
export type { EngineLogger, JsonLoggerOptions, LogLevel } from './logger';
export { PositionBackwardsError } from './position-store';
export { SchemaChangeError } from './relation-binding';
export { SlotGoneError, SourceSetupError } from './source-setup';
export {
  PositionAheadOfSourceError,
  SourceStandbyBehindError,
  TargetBehindSlotError,
} from './target-behind-slot';
export { formatLsn, parseLsn } from './lsn';
export type { Lsn } from './lsn';
export {
  ConnectionLostError,
  DEFAULT_RECONNECT_POLICY,
  EngineGaveUpError,
  isConnectionLoss,
  reconnectDelay,
} from './reconnect';
export type { ConnectionSide, ReconnectPolicy } from './reconnect';
export { DEFAULT_SLOT_WAIT_MS, SlotInUseError } from './slot-holder';
