import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { npmScriptCommand } from '../support/npm-script';

// `npm run demo` and `npm run example` start two PostgreSQL servers and remove their
// folders when a Ctrl-C stops them. That cleanup runs in the program, so a Ctrl-C must
// reach the program. tsx's CLI runs it in a child process and relays the signal: if the
// child does not confirm it within tens of milliseconds (a loaded machine, an event loop
// busy for a moment), the CLI kills it with SIGKILL, and nothing is cleaned up. CI saw
// both servers' folders left behind after a Ctrl-C at load 16 on 2 cores.

const ROOT = path.resolve(__dirname, '../..');

/**
 * A program that cleans up in its SIGINT handler and whose event loop is busy in
 * stretches of 300 ms, as a program on a loaded machine is slow to answer.
 */
const PROGRAM = `
import { writeFileSync } from 'node:fs';
const marker: string = process.argv[2]!;
process.once('SIGINT', () => {
  writeFileSync(marker, 'cleaned up');
  process.exit(130);
});
process.stdout.write('ready\\n');
setInterval(() => {
  const end = Date.now() + 300;
  while (Date.now() < end);
}, 1);
`;

describe.each(['demo', 'example'])('npm run %s: a Ctrl-C reaches the program', (name) => {
  it('runs its cleanup even when its event loop is busy as the Ctrl-C comes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ctrl-c-'));
    try {
      const program = path.join(dir, 'program.ts');
      const marker = path.join(dir, 'cleaned-up');
      await writeFile(program, PROGRAM);
      // The script's runner, with this program in place of its file and arguments.
      const { binary, args } = npmScriptCommand(name);
      const runner = args.slice(
        0,
        args.findIndex((arg) => arg.endsWith('.ts')),
      );
      expect(runner.length, 'the script runs no .ts file').toBeLessThan(args.length);
      const child = spawn(binary, [...runner, program, marker], { cwd: ROOT, detached: true });
      const exited = new Promise((resolve) => child.on('close', resolve));
      await new Promise((resolve) => child.stdout.once('data', resolve));
      await new Promise((resolve) => setTimeout(resolve, 50)); // inside a busy stretch
      process.kill(-child.pid!, 'SIGINT'); // the whole group, as a terminal's Ctrl-C
      await exited;
      expect(existsSync(marker)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
