import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own name, as examples/ import it (tsconfig.json "paths" does the same
  // for tsc and tsx): its sources, so a test needs no build.
  resolve: { alias: [{ find: /^audit-trail-kit$/, replacement: `${__dirname}/src/index.ts` }] },
  test: {
    include: ['test/**/*.test.ts'],
    globals: true,
    globalSetup: ['test/support/global-setup.ts'],
    // Database tests start replication slots and servers: keep the pool small on 2 cores.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // aws-cdk-lib's built-in CloudFormation validation (a WASM engine) doubled the CPU
    // time of every synth, and its findings are only warnings that no test read:
    // migrations-bundle.test.ts turns it back on for the example's `cdk synth` and
    // requires a clean report.
    env: { CDK_VALIDATION: 'false' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
