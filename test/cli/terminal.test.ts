import { PassThrough } from 'node:stream';
import { openLineProgress, openTerminal } from '../../src/cli/terminal';

/** A stream that says it is a terminal (cli-progress draws on it) and keeps what it got. */
function fakeTerminal(isTTY = true): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 200 });
  let written = '';
  stream.on('data', (chunk: Buffer) => (written += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => written };
}

/** What the records written off a terminal say. */
function records(text: string): Record<string, unknown>[] {
  return text
    .trimEnd()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the CLI terminal: bars, log records and progress records', () => {
  it('a record logged while a bar is drawn is written when the bar closes, not lost', async () => {
    const terminal = fakeTerminal();
    const { logger, progress } = openTerminal(terminal.stream, {});
    const task = progress!.start('work', 10);
    task.advance(5);
    // Before the bar's next frame (cli-progress redraws every 100 ms).
    logger.log('warn', 'logged between two frames', { table: 'public.items' });
    task.advance(5);
    task.done();
    await new Promise((resolve) => setImmediate(resolve));
    expect(terminal.text()).toContain('logged between two frames');
    expect(terminal.text()).toMatch(/work \[[^\]]+\] 100% 10\/10/);
  });

  it('off a terminal: progress records every AUDIT_TRAIL_PROGRESS_INTERVAL seconds, in the unit counted', () => {
    const terminal = fakeTerminal(false);
    const { progress } = openTerminal(terminal.stream, { AUDIT_TRAIL_PROGRESS_INTERVAL: '0' });
    expect(progress?.countsTotals).toBe(false);
    const rows = progress!.start('initial load public.items', 7);
    rows.advance(3);
    rows.advance(4);
    rows.done();
    rows.advance(1); // after done: nothing
    const bytes = progress!.start('catch-up before loading added tables (WAL bytes)', 100, 'bytes');
    bytes.advance(100);
    bytes.done();
    const written = records(terminal.text());
    expect(
      written.map(({ time: _time, rowsPerSecond: _r, bytesPerSecond: _b, ...rest }) => rest),
    ).toEqual([
      { level: 'info', msg: 'progress', task: 'initial load public.items', rows: 3, total: 7 },
      { level: 'info', msg: 'progress', task: 'initial load public.items', rows: 7, total: 7 },
      {
        level: 'info',
        msg: 'progress',
        task: 'catch-up before loading added tables (WAL bytes)',
        bytes: 100,
        total: 100,
      },
    ]);
    expect(written[2]).toHaveProperty('bytesPerSecond');
    expect(written[2]).not.toHaveProperty('rows');
  });

  it('off a terminal, the default interval keeps a short task silent; --no-progress turns records off', () => {
    const quiet = fakeTerminal(false);
    const task = openTerminal(quiet.stream, {}).progress!.start('verify public.items');
    task.advance(1000);
    task.done();
    expect(quiet.text()).toBe('');
    const off = openTerminal(fakeTerminal(false).stream, {
      AUDIT_TRAIL_PROGRESS: 'false',
      AUDIT_TRAIL_PROGRESS_INTERVAL: '0',
    });
    expect(off.progress).toBeUndefined();
    expect(() =>
      openTerminal(fakeTerminal(false).stream, { AUDIT_TRAIL_PROGRESS_INTERVAL: 'soon' }),
    ).toThrow(/AUDIT_TRAIL_PROGRESS_INTERVAL must be a number of seconds/);
  });

  it("migrate's lines: above the bars while one is drawn on the same terminal, straight to stdout otherwise", async () => {
    const screen = fakeTerminal();
    const stdout = Object.assign(fakeTerminal(), {});
    const lines = openLineProgress(stdout.stream, screen.stream, {});
    lines.write('before any bar\n');
    const task = lines.progress!.start('migrate: staging tables', 2);
    lines.write('created the staging table of public.items\n');
    task.advance(2);
    task.done();
    lines.write('target migrated (public.items)\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(stdout.text()).toBe('before any bar\ntarget migrated (public.items)\n');
    expect(screen.text()).toContain('created the staging table of public.items');

    const piped = fakeTerminal(false);
    const offScreen = openLineProgress(piped.stream, fakeTerminal(false).stream, {});
    expect(offScreen.progress).toBeUndefined();
    offScreen.write('applied migration 0001-audit-log\n');
    expect(piped.text()).toBe('applied migration 0001-audit-log\n');
  });
});
