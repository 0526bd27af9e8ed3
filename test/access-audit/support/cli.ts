// The access-audit tests' name for the shared in-process runner.
export { runCliInProcess as runCli, type InProcessRun as CliRun } from '../../support/cli';
