/** How log records are written: JSON lines, or pino-pretty's one line per record for people. */
export type LogFormat = 'json' | 'pretty';

/** The values `--log-format` takes. Apart from src/cli/terminal.ts, which loads the packages that draw them. */
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];
