import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Template } from 'aws-cdk-lib/assertions';
import { KIT_ROOT } from '../../infra/constructs/bundled-function';
import { parseConfig } from '../../src/config';
import type { MigrationsEvent } from '../../src/lambda/migrate-target/handler';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Synthesizes the example config with the real `npx cdk synth` (pinned CLI, cdk.json,
 * `-c config=`, offline), then runs the migrations Lambda exactly as it was bundled
 * (esbuild, triggers/ copied in) against real databases, with a stand-in for the Secrets
 * Manager API on 127.0.0.1.
 */

const config = parseConfig({
  auditSchema: 'audit',
  tables: [{ table: 'orders' }, { schema: 'sales', table: 'order_items' }],
});

/** Answers GetSecretValue from `secrets` (SecretId → secret JSON). */
function fakeSecretsManager(secrets: Record<string, object>): Promise<Server> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      const secret = secrets[SecretId];
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (
        secret === undefined ||
        request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue'
      ) {
        response.statusCode = 400;
        response.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'not found' }));
        return;
      }
      response.end(
        JSON.stringify({
          ARN: SecretId,
          Name: SecretId,
          SecretString: JSON.stringify(secret),
          VersionId: 'v1',
        }),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function secretFor(url: string): object {
  const parsed = new URL(url);
  return {
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    host: parsed.hostname,
    port: Number(parsed.port),
  };
}

let server: Server | undefined;
afterAll(() => server?.close());

it(
  '`cdk synth` bundles a migrations Lambda that installs staging tables and the audit log',
  { timeout: 240_000 },
  async () => {
    // The real CLI path: cdk.json's app under the pinned aws-cdk CLI, offline, no credentials.
    const outdir = mkdtempSync(path.join(tmpdir(), 'cdk-synth-'));
    await promisify(execFile)(
      'npx',
      ['cdk', 'synth', '-c', 'config=examples/aws.config.json', '-o', outdir, '-q', '--no-notices'],
      {
        cwd: KIT_ROOT,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: '',
          AWS_SECRET_ACCESS_KEY: '',
          AWS_PROFILE: '',
          // The suite turns aws-cdk-lib's template validation off (vitest.config.ts): here
          // it runs, and its report on the example's stack must be clean.
          CDK_VALIDATION: 'true',
        },
      },
    );
    const validation = JSON.parse(
      readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'),
    ) as { pluginReports: { pluginName: string; violations: unknown[] }[] };
    expect(validation.pluginReports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ pluginName: 'CloudFormation Validate', violations: [] }),
      ]),
    );
    const template = Template.fromJSON(
      JSON.parse(readFileSync(path.join(outdir, 'AuditTrail.template.json'), 'utf8')) as Record<
        string,
        unknown
      >,
    );
    const [fn] = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Description: 'audit-trail: target migrations (staging tables, audit log, triggers)',
        },
      }),
    ) as { Properties: { Code: { S3Key: string } } }[];
    // The asset's S3 key is <hash>.zip; the cloud assembly holds it as asset.<hash>/.
    const assetHash = fn?.Properties.Code.S3Key.replace(/\.zip$/, '');
    const assetDir = path.join(outdir, `asset.${assetHash}`);
    expect(existsSync(path.join(assetDir, 'index.js'))).toBe(true);
    expect(existsSync(path.join(assetDir, 'triggers', 'capture-change.sql'))).toBe(true);

    const sourceUrl = await createTestDatabase('bundle_source');
    const targetUrl = await createTestDatabase('bundle_target');
    await withClient(sourceUrl, (client) =>
      client.query(`
      CREATE TABLE public.orders (id bigint PRIMARY KEY, status text);
      CREATE SCHEMA sales;
      CREATE TABLE sales.order_items (order_id bigint, line_no int, sku text, PRIMARY KEY (order_id, line_no));
    `),
    );
    server = await fakeSecretsManager({
      source: secretFor(sourceUrl),
      target: secretFor(targetUrl),
    });
    const event: MigrationsEvent = {
      RequestType: 'Create',
      ResourceProperties: {
        Config: JSON.stringify({ auditSchema: config.auditSchema, tables: config.tables }),
        Source: {
          SecretArn: 'source',
          DatabaseName: new URL(sourceUrl).pathname.slice(1),
          SslMode: 'disable',
        },
        Target: {
          SecretArn: 'target',
          DatabaseName: new URL(targetUrl).pathname.slice(1),
          SslMode: 'disable',
        },
      },
    };
    const script = `require(${JSON.stringify(path.join(assetDir, 'index.js'))}).handler(${JSON.stringify(event)})
    .then((r) => process.stdout.write('\\nRESULT ' + JSON.stringify(r)), (e) => { console.error(e); process.exit(1); })`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      env: {
        PATH: process.env.PATH ?? '',
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      },
    });
    const result = stdout.slice(stdout.lastIndexOf('\nRESULT ') + '\nRESULT '.length);
    expect(stdout).toContain('applied migration');
    expect(JSON.parse(result)).toMatchObject({
      PhysicalResourceId: 'audit-trail-migrations',
      Data: { Tables: '2' },
    });

    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'audit' AND c.relkind IN ('r', 'p') AND c.relname IN ('audit_log', 'orders_staging', 'order_items_staging')
       ORDER BY 1`,
      ),
    );
    expect(rows.map((row) => row.name)).toEqual([
      'audit_log',
      'order_items_staging',
      'orders_staging',
    ]);
  },
);
