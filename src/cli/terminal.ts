import cliProgress, { type MultiBar, type SingleBar } from 'cli-progress';
import { prettyFactory } from 'pino-pretty';
import { createJsonLogger, type EngineLogger } from '../engine/logger';
import type { ProgressReporter, ProgressTask } from '../support/progress';
import type { LogFormat } from './log-format';

/** Least time between two updates of a bar. */
const UPDATE_INTERVAL_MS = 100;

/**
 * What a long-running command writes to stderr besides its result: its log records,
 * and, on a terminal, progress bars. Off a terminal (a pipe, a file, a CI log) there
 * are no bars and the records are the JSON lines of {@link createJsonLogger}, exactly
 * as a library user gets them.
 */
export interface Terminal {
  readonly logger: EngineLogger;
  /** Bars on a terminal; undefined elsewhere (the library then counts nothing extra). */
  readonly progress: ProgressReporter | undefined;
}

/**
 * The stderr of a command that logs: bars when it is a terminal (unless
 * `--no-progress`), and log records in `--log-format` (default: pretty on a terminal,
 * JSON lines elsewhere). The global options reach here through the environment (see
 * program.ts).
 */
export function openTerminal(
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Terminal {
  const bars = openBars(stream, env);
  const format =
    (env.AUDIT_TRAIL_LOG_FORMAT as LogFormat | undefined) ?? (stream.isTTY ? 'pretty' : 'json');
  const logger = createJsonLogger({
    // Above the bars while they are drawn, so a record never lands inside one.
    stream: bars ? bars.logStream : stream,
    ...(format === 'pretty' && { render: prettyRenderer(stream.isTTY === true) }),
  });
  return { logger, progress: bars };
}

/**
 * Progress bars on `stream` when it is a terminal and `--no-progress` was not given;
 * undefined otherwise (pass it as the library's `progress` option: undefined shows
 * nothing and counts nothing extra).
 */
export function openProgress(
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): ProgressReporter | undefined {
  return openBars(stream, env);
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
 * Progress bars drawn with cli-progress on stderr, one per task running now: a task
 * with a total shows percent, count, rate and ETA; one without (a large transaction
 * whose size is known only at its commit) shows count, rate and elapsed time.
 */
class TerminalBars implements ProgressReporter {
  private multibar: MultiBar | null = null;
  private running = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {}

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
      {
        format: known
          ? '{label} [{bar}] {percentage}% {value}/{total} | {rate}/s | ETA {eta_formatted}'
          : '{label} {value} | {rate}/s | {duration_formatted}',
      },
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
    multibar?.stop();
  }
}
