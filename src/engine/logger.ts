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
  /**
   * Turns each JSON line into what is written, for people at a terminal (the CLI
   * passes pino-pretty's formatter: the record's keys are pino's `time`, `level` and
   * `msg`). @default the JSON line as it is
   */
  readonly render?: (jsonLine: string) => string;
}

/**
 * A logger writing one JSON object per line (`{"time","level","msg",...fields}`),
 * to stderr by default so stdout stays free for command output.
 *
 * @example
 * ```ts
 * const logger = createJsonLogger({ level: 'debug' });
 * logger.log('info', 'initial load copied', { table: 'public.items', rows: 1200 });
 * // {"time":"2026-01-05T10:00:00.000Z","level":"info","msg":"initial load copied","table":"public.items","rows":1200}
 * ```
 */
export function createJsonLogger(options: JsonLoggerOptions = {}): EngineLogger {
  const stream = options.stream ?? process.stderr;
  const threshold = LEVEL_ORDER[options.level ?? defaultLogLevel()];
  return {
    log(level, message, fields = {}) {
      if (LEVEL_ORDER[level] < threshold) return;
      const record = { time: new Date().toISOString(), level, msg: message, ...fields };
      const line = `${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`;
      stream.write(options.render ? options.render(line) : line);
    },
  };
}

/** A logger that drops everything. */
export const silentLogger: EngineLogger = { log: () => undefined };
