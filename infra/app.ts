#!/usr/bin/env node
/**
 * CDK entry point (`cdk.json`: `npx tsx infra/app.ts`). The config file comes from
 * `-c config=PATH` (default `audit-trail.config.json`).
 */
import { App } from 'aws-cdk-lib';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../src/config';
import { buildApp } from './build-app';

async function main(): Promise<void> {
  const app = new App();
  const configPath =
    (app.node.tryGetContext('config') as string | undefined) ?? DEFAULT_CONFIG_FILE;
  const config = await loadConfig(configPath);
  buildApp(config, app);
  app.synth();
}

main().catch((error: unknown) => {
  process.stderr.write(`audit-trail CDK app: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
