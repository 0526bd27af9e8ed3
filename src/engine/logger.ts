/** Severity of an engine log record. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured log sink: one record per call, fields are plain data. */
export interface EngineLogger {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The levels, lowest first. */
export const LOG_LEVELS = Object.keys(LEVEL_ORDER) as LogLevel[];

/** `AUDIT_TRAIL_LOG_LEVEL` (the CLI's `--log-level`) when it names a level, else "info". */
export function defaultLogLevel(): LogLevel {
  const wanted = process.env.AUDIT_TRAIL_LOG_LEVEL as LogLevel | undefined;
  return wanted !== undefined && wanted in LEVEL_ORDER ? wanted : 'info';
}

/** Options for {@link createJsonLogger}. */
export interface JsonLoggerOptions {
  /** Where lines go. @default process.stderr */
  readonly stream?: NodeJS.WritableStream;
  /** Lowest level written. @default `AUDIT_TRAIL_LOG_LEVEL`, else "info" */
  readonly level?: LogLevel;
}

/**
 * A logger writing one JSON object per line (`{"time","level","msg",...fields}`),
 * to stderr by default so stdout stays free for command output.
 */
export function createJsonLogger(options: JsonLoggerOptions = {}): EngineLogger {
  const stream = options.stream ?? process.stderr;
  const threshold = LEVEL_ORDER[options.level ?? defaultLogLevel()];
  return {
    log(level, message, fields = {}) {
      if (LEVEL_ORDER[level] < threshold) return;
      const record = { time: new Date().toISOString(), level, msg: message, ...fields };
      stream.write(
        `${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`,
      );
    },
  };
}

/** A logger that drops everything. */
export const silentLogger: EngineLogger = { log: () => undefined };
