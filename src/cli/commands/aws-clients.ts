// The AWS SDK clients the DMS commands create, loaded when one of them runs. Commands
// import packages through kit modules like this one, never with import() directly: an
// import() resolves a package's ESM build, a second copy beside the CommonJS one the
// rest of the kit (and aws-sdk-client-mock in tests) uses.
export { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
export { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
