import { currentKitVersion, kitVersionOf, type KitContents } from '../../src/migrate/kit-version';

const base: KitContents = {
  packageVersion: '0.2.0',
  migrations: ['0001-audit-log', '0002-kit-sql-file'],
  sqlFiles: { 'a.sql': 'CREATE FUNCTION a() ...', 'b.sql': 'CREATE FUNCTION b() ...' },
};

describe('kit version (what makes `cdk deploy` re-run the migrations after an upgrade)', () => {
  it('changes with a new migration, a changed SQL file or a new package version', () => {
    const original = kitVersionOf(base);
    expect(kitVersionOf({ ...base, migrations: [...base.migrations, '0003-x'] })).not.toBe(
      original,
    );
    expect(
      kitVersionOf({
        ...base,
        sqlFiles: { ...base.sqlFiles, 'b.sql': 'CREATE FUNCTION b2() ...' },
      }),
    ).not.toBe(original);
    expect(kitVersionOf({ ...base, packageVersion: '0.2.1' })).not.toBe(original);
  });

  it('changes when a placeholder source changes though no file under triggers/ does', async () => {
    // The SET clauses of the capture functions are rendered from PINNED_OUTPUT_SETTINGS
    // ({{pinned_output_settings}}): a new pinned setting must reach existing installs
    // through `cdk deploy` as a changed SQL file does.
    const original = currentKitVersion();
    vi.resetModules();
    vi.doMock('../../src/postgres/pinned-settings', async (importOriginal) => {
      const actual = await importOriginal<typeof import('../../src/postgres/pinned-settings')>();
      return {
        PINNED_OUTPUT_SETTINGS: { ...actual.PINNED_OUTPUT_SETTINGS, xmloption: 'content' },
      };
    });
    try {
      const changed = await import('../../src/migrate/kit-version');
      expect(changed.currentKitVersion()).not.toBe(original);
    } finally {
      vi.doUnmock('../../src/postgres/pinned-settings');
      vi.resetModules();
    }
  });

  it('does not depend on the order files are listed in', () => {
    const reversed = Object.fromEntries(Object.entries(base.sqlFiles).reverse());
    expect(kitVersionOf({ ...base, sqlFiles: reversed })).toBe(kitVersionOf(base));
    expect(currentKitVersion()).toMatch(/^[0-9a-f]{16}$/);
  });
});
