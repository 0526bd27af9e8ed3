import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command, type CommandUnknownOpts, type Option } from '@commander-js/extra-typings';
import { configOption, jsonOption, sourceUrlOption, taskArnOption } from '../../src/cli/options';
import { buildProgram } from '../../src/cli/program';
import { runCli } from '../support/cli';

/** Every command of the tree with its full name (`pgaudit scan`). */
function commands(
  command: CommandUnknownOpts,
  prefix = '',
): { name: string; command: CommandUnknownOpts }[] {
  return command.commands.flatMap((sub) => {
    const name = `${prefix}${sub.name()}`;
    return [{ name, command: sub }, ...commands(sub, `${name} `)];
  });
}

/** What a user can observe of an option: flags, description, default, env variable. */
function shape(option: Option) {
  return {
    flags: option.flags,
    description: option.description,
    defaultValue: option.defaultValue as unknown,
    envVar: option.envVar,
  };
}

// The options several commands take are defined once (src/cli/options.ts): a command
// that declares its own copy drifts (mappings, pgaudit scan and das scan had `--config`
// without `-c`).
describe('shared options are the same on every command', () => {
  const all = commands(buildProgram());

  it.each([
    ['--config', ['migrate', 'mappings', 'pgaudit scan', 'das scan', 'verify', 'doctor']],
    ['--source-url', ['migrate', 'pgaudit setup', 'pgaudit check', 'slot list', 'init']],
    ['--target-url', ['migrate', 'history', 'verify', 'anchor', 'grant']],
    ['--json', ['migrate', 'grant', 'anchor', 'init', 'pgaudit check', 'task start']],
    ['--task-arn', ['status', 'task start', 'task stop', 'task reload']],
  ] as const)('%s: one definition', (long, mustHave) => {
    const holders = all.flatMap(({ name, command }) => {
      const option = command.options.find((candidate) => candidate.long === long);
      return option ? [{ name, option }] : [];
    });
    expect(holders.map((holder) => holder.name)).toEqual(expect.arrayContaining([...mustHave]));
    const shapes = new Set(
      holders.map(({ option }) => {
        // --json names what it prints; everything else about it is shared.
        const { description, ...rest } = shape(option);
        return JSON.stringify(long === '--json' ? rest : { description, ...rest });
      }),
    );
    expect([...shapes]).toHaveLength(1);
  });

  it('-c and AUDIT_TRAIL_CONFIG work for mappings and pgaudit scan (built binary)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-options-'));
    const config = path.join(dir, 'elsewhere.json');
    await writeFile(config, JSON.stringify({ tables: [{ schema: 'shop', table: 'orders' }] }));
    const viaFlag = await runCli(['mappings', '-c', config]);
    expect(viaFlag.stderr).toBe('');
    expect(viaFlag.stdout).toContain('"orders"');
    const viaEnv = await runCli(['mappings'], { AUDIT_TRAIL_CONFIG: config });
    expect(viaEnv.stdout).toBe(viaFlag.stdout);

    const empty = path.join(dir, 'empty.log');
    await writeFile(empty, '');
    const scan = await runCli(['pgaudit', 'scan', empty, '-c', path.join(dir, 'none.json')]);
    // -c is read: the missing file is named.
    expect(scan.stderr).toMatch(/CONFIG_INVALID\]: cannot read config .*none\.json/);
    expect(scan.code).toBe(2);
  });

  // Checked by `npm run typecheck`: a shared option keeps its type through addOption, so
  // each command's action reads typed options without a cast (@commander-js/extra-typings).
  it('types the options a command adds from their definitions', () => {
    const command = new Command('any')
      .addOption(configOption())
      .addOption(sourceUrlOption())
      .addOption(taskArnOption())
      .addOption(jsonOption());
    expectTypeOf(command.opts()).toEqualTypeOf<{
      config: string;
      sourceUrl?: string | undefined;
      taskArn: string;
      json?: true | undefined;
    }>();
    expect(command.parse(['--task-arn', 'arn:x'], { from: 'user' }).opts()).toEqual({
      config: 'audit-trail.config.json',
      taskArn: 'arn:x',
    });
  });
});
