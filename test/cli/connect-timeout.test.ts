import net from 'node:net';
import { createTestDatabase, withClient } from '../support/databases';
import { connectionArgs, runCli, writeConfig } from '../support/cli';

/**
 * A listener on loopback that accepts TCP connections and never answers: what a
 * firewall that drops packets, or a stuck proxy, looks like to a client.
 */
async function startBlackhole(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgres://nobody:secret@127.0.0.1:${port}/app`,
    close: async () => {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('connection timeouts: nothing waits for ever', () => {
  let blackhole: Awaited<ReturnType<typeof startBlackhole>>;
  let configFile: string;
  beforeAll(async () => {
    blackhole = await startBlackhole();
    configFile = await writeConfig({ tables: [{ schema: 'public', table: 'items' }] });
  });
  afterAll(() => blackhole.close());

  it('--connect-timeout: migrate gives up on a silent source, names it, exits 2', async () => {
    const targetUrl = await createTestDatabase('tmo');
    const run = await runCli([
      'migrate',
      ...connectionArgs({ configFile, sourceUrl: blackhole.url, targetUrl }),
      '--connect-timeout',
      '2',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^audit-trail: error \[CONNECT_TIMEOUT\]: source: cannot connect to 127\.0\.0\.1:\d+\/app: no answer within the connect timeout/,
    );
    expect(run.stderr).not.toContain('secret');
  });

  it("honours PGCONNECT_TIMEOUT, and a URL's connect_timeout over it", async () => {
    const viaEnv = await runCli(
      ['history', ...connectionArgs({ configFile, targetUrl: blackhole.url }), 'public.items', '1'],
      { PGCONNECT_TIMEOUT: '2' },
    );
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toMatch(
      /target: cannot connect to .*no answer within the connect timeout/,
    );

    // Were the URL's 2 s not honoured, this would wait 600 s and fail on the test timeout.
    const viaUrl = await runCli(
      [
        'history',
        ...connectionArgs({ configFile, targetUrl: `${blackhole.url}?connect_timeout=2` }),
        'public.items',
        '1',
      ],
      { PGCONNECT_TIMEOUT: '600' },
    );
    expect(viaUrl.code).toBe(2);
  });

  it('verify with an unreachable target exits 2 and leaves no transaction open on the source', async () => {
    const sourceUrl = await createTestDatabase('tmosrc');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE public.items (id int PRIMARY KEY, name text)'),
    );
    const run = await runCli([
      'verify',
      ...connectionArgs({ configFile, sourceUrl, targetUrl: blackhole.url }),
      '--connect-timeout',
      '2',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/target: cannot connect/);
    const { rows } = await withClient(sourceUrl, (client) =>
      client.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'audit-trail-verify' AND datname = current_database()`,
      ),
    );
    expect(rows[0].n).toBe(0);
  });

  it('pgaudit check reads AUDIT_TRAIL_SOURCE_URL and gives up on a silent source like every command', async () => {
    const run = await runCli(
      ['pgaudit', 'check', '--config', configFile, '--connect-timeout', '2'],
      {
        AUDIT_TRAIL_SOURCE_URL: blackhole.url,
      },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^audit-trail: error \[CONNECT_TIMEOUT\]: source: cannot connect to 127\.0\.0\.1:\d+\/app/,
    );
    const missing = await runCli(['pgaudit', 'check', '--config', configFile], {
      AUDIT_TRAIL_SOURCE_URL: '',
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--source-url is required/);
  });

  it('a wrong command line exits 2', async () => {
    expect((await runCli(['migrate', '--no-such-flag'])).code).toBe(2);
    expect((await runCli(['replicate', '--batch-size', 'x'])).code).toBe(2);
  });
});
