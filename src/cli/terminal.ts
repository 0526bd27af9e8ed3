import cliProgress, {
  type GenericFormatter,
  type MultiBar,
  type Params,
  type SingleBar,
} from 'cli-progress';
import { prettyFactory } from 'pino-pretty';
import { createJsonLogger, type EngineLogger } from '../engine/logger';
import {
  DEFAULT_PROGRESS_INTERVAL_MS,
  loggedProgress,
  type ProgressReporter,
  type ProgressTask,
} from '../support/progress';
import { UsageError } from './errors';
import type { LogFormat } from './log-format';

/** Least time between two updates of a bar. */
const UPDATE_INTERVAL_MS = 100;

/** A bar whose total is known: percent, count, rate and ETA. */
const KNOWN_TOTAL_FORMAT =
  '{label} [{bar}] {percentage}% {value}/{total} | {rate}/s | ETA {eta_formatted}';

/**
 * What a long-running command writes to stderr besides its result: its log records,
 * and its progress. On a terminal, bars and readable log lines; off one (a pipe, a
 * file, a CI log), the JSON lines of {@link createJsonLogger}, exactly as a library user
 * gets them, with a `progress` record now and then for long work.
 */
export interface Terminal {
  readonly logger: EngineLogger;
  /**
   * Bars on a terminal; `progress` log records elsewhere ({@link loggedProgress});
   * undefined with `--no-progress` (the library then counts nothing extra).
   */
  readonly progress: ProgressReporter | undefined;
}

/**
 * The stderr of a command that logs: bars when it is a terminal, and log records in
 * `--log-format` (default: pretty on a terminal, JSON lines elsewhere); off a terminal,
 * an `info` record `progress` at most every `AUDIT_TRAIL_PROGRESS_INTERVAL` seconds
 * (default 10) per long task, so a piped run is not silent until its end.
 * `--no-progress` turns bars and records off. The global options reach here through
 * the environment (see program.ts).
 */
export function openTerminal(
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Terminal {
  const bars = openBars(stream, env);
  // Above the bars while they are drawn, so a record never lands inside one.
  const logger = openLogger(bars ? bars.logStream : stream, stream, env);
  if (bars || env.AUDIT_TRAIL_PROGRESS === 'false') return { logger, progress: bars };
  return { logger, progress: loggedProgress(logger, { intervalMs: progressLogInterval(env) }) };
}

/** Log records on `target` in `--log-format` (default: pretty when `stream` is a terminal). */
function openLogger(
  target: NodeJS.WritableStream,
  stream: NodeJS.WriteStream,
  env: NodeJS.ProcessEnv,
): EngineLogger {
  const format =
    (env.AUDIT_TRAIL_LOG_FORMAT as LogFormat | undefined) ?? (stream.isTTY ? 'pretty' : 'json');
  return createJsonLogger({
    stream: target,
    ...(format === 'pretty' && { render: prettyRenderer(stream.isTTY === true) }),
  });
}

/**
 * Progress for a command whose work can run for minutes but that logs nothing else
 * (`verify`): the progress of {@link openTerminal}.
 */
export function openProgressOrLog(
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): ProgressReporter | undefined {
  return openTerminal(stream, env).progress;
}

/**
 * Progress for a command that prints lines to `out` as it works (`migrate`): bars on
 * stderr when it is a terminal (unless `--no-progress`), and `write` for the lines,
 * above the bars while one is drawn on the same screen, straight to `out` otherwise.
 * Off a terminal, no bars and no progress records: the lines are the progress.
 */
export function openLineProgress(
  out: NodeJS.WriteStream,
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): { readonly progress: ProgressReporter | undefined; write(text: string): void } {
  const bars = openBars(stream, env);
  return {
    progress: bars,
    write: (text) => {
      if (bars?.drawing && out.isTTY === true) bars.logStream.write(text);
      else out.write(text);
    },
  };
}

/** AUDIT_TRAIL_PROGRESS_INTERVAL in milliseconds; a value that is not a number is refused. */
function progressLogInterval(env: NodeJS.ProcessEnv): number {
  const text = env.AUDIT_TRAIL_PROGRESS_INTERVAL;
  if (text === undefined || text === '') return DEFAULT_PROGRESS_INTERVAL_MS;
  if (!/^\d+(\.\d+)?$/.test(text))
    throw new UsageError(
      `AUDIT_TRAIL_PROGRESS_INTERVAL must be a number of seconds, not ${JSON.stringify(text)}`,
    );
  return Number(text) * 1000;
}

function openBars(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): TerminalBars | undefined {
  if (stream.isTTY !== true || env.AUDIT_TRAIL_PROGRESS === 'false') return undefined;
  return new TerminalBars(stream);
}

/**
 * pino-pretty's formatter (the kit's JSON records use pino's `time`, `level` and
 * `msg` keys): `[10:00:00.000] INFO: initial load copied` and the fields after it.
 */
function prettyRenderer(colorize: boolean): (jsonLine: string) => string {
  return prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    // The kit's records carry no pino pid/hostname; nothing to hide but the defaults.
    ignore: 'pid,hostname',
  });
}

/**
 * cli-progress's own line for a bar with a total, except the ETA while there is no
 * rate to estimate it from: cli-progress starts its estimate at 0 (the first frame,
 * before any row, said "ETA 0s") and may hold NULL or INF; those frames say "ETA …".
 */
const withHonestEta: GenericFormatter = (options, params, payload) =>
  cliProgress.Format.Formatter(
    {
      ...options,
      format: etaKnown(params)
        ? KNOWN_TOTAL_FORMAT
        : KNOWN_TOTAL_FORMAT.replace('{eta_formatted}', '…'),
    },
    params,
    payload,
  );

function etaKnown(params: Params): boolean {
  const eta: unknown = params.eta;
  return params.value > 0 && typeof eta === 'number' && Number.isFinite(eta);
}

/**
 * Progress bars drawn with cli-progress on stderr, one per task running now: a task
 * with a total shows percent, count, rate and ETA; one without (a large transaction
 * whose size is known only at its commit) shows count, rate and elapsed time.
 */
class TerminalBars implements ProgressReporter {
  private multibar: MultiBar | null = null;
  private running = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  /** Whether a bar is on screen now. */
  get drawing(): boolean {
    return this.multibar !== null;
  }

  /** Written above the bars while any is drawn, straight to the terminal otherwise. */
  readonly logStream = {
    write: (text: string): boolean => {
      if (this.multibar) this.multibar.log(text);
      else this.stream.write(text);
      return true;
    },
  } as unknown as NodeJS.WritableStream;

  start(label: string, total?: number): ProgressTask {
    const multibar = this.open();
    const known = total !== undefined;
    const bar: SingleBar = multibar.create(
      total ?? 0,
      0,
      {
        label,
        rate: '…',
      },
      known
        ? { format: withHonestEta }
        : { format: '{label} {value} | {rate}/s | {duration_formatted}' },
    );
    this.running++;
    const started = Date.now();
    let value = 0;
    let drawn = started;
    let finished = false;
    const draw = (now: number) => {
      drawn = now;
      const seconds = (now - started) / 1000;
      const rate = seconds > 0 ? Math.round(value / seconds).toLocaleString('en-US') : '…';
      bar.update(value, { rate });
    };
    return {
      advance: (count) => {
        if (finished) return;
        value += count;
        // At most every 100 ms: cli-progress estimates the ETA from its last updates,
        // which must be spread over time, and a redraw per row would cost more than the row.
        const now = Date.now();
        if (now - drawn >= UPDATE_INTERVAL_MS || value === total) draw(now);
      },
      done: () => {
        if (finished) return;
        finished = true;
        draw(Date.now());
        bar.stop();
        if (--this.running === 0) this.close();
      },
    };
  }

  private open(): MultiBar {
    this.multibar ??= new cliProgress.MultiBar(
      {
        stream: this.stream,
        // The final state of each bar stays on screen, as a record of what was done.
        clearOnComplete: false,
        // A command killed mid-bar must not leave the cursor hidden.
        hideCursor: false,
        autopadding: true,
        // The commands handle SIGINT themselves (replicate stops cleanly).
        gracefulExit: false,
      },
      cliProgress.Presets.shades_classic,
    );
    return this.multibar;
  }

  private close(): void {
    const multibar = this.multibar;
    this.multibar = null;
    // cli-progress writes logged lines at its next frame, and stop() draws none first:
    // without this frame, a record logged since the last one would be lost.
    multibar?.update();
    multibar?.stop();
  }
}
