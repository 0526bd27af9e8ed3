import {
  compileLogPrefix,
  createAuditParser,
  LogPrefixError,
  splitCsv,
  splitLogRecords,
  toIsoTime,
} from '../../src/access-audit';
import { AuditRecordError } from '../../src/access-audit/parser';
import { prefixLogsLeaderPid } from '../../src/access-audit/prefix';
import { classifyNoise } from '../../src/access-audit/noise';

const parse = createAuditParser();
const PREFIX = '2026-11-22 22:39:36 UTC:10.0.0.5(36646):alice@appdb:[4273]:';

describe('log_line_prefix', () => {
  it('reads the RDS prefix, including IPv6 hosts and [local]', () => {
    const match = compileLogPrefix();
    expect(match(`${PREFIX}LOG:  x`)).toEqual({
      fields: {
        timestamp: '2026-11-22 22:39:36 UTC',
        remoteHost: '10.0.0.5',
        remotePort: 36646,
        user: 'alice',
        database: 'appdb',
        pid: 4273,
      },
      end: PREFIX.length,
    });
    expect(
      match('2026-11-22 22:39:36 UTC:2001:db8::7(5432):bob@db:[1]:LOG:  x')?.fields,
    ).toMatchObject({
      remoteHost: '2001:db8::7',
      remotePort: 5432,
      user: 'bob',
    });
    expect(match('2026-11-22 22:39:36 UTC:[local]:bob@db:[1]:LOG:  x')?.fields.remoteHost).toBe(
      '[local]',
    );
    // Background processes have no remote host, user or database: absent, as in csvlog and jsonlog.
    const background = match('2026-11-22 22:39:36 UTC::@:[5730]:LOG:  checkpoint')?.fields;
    expect(background).toEqual({ timestamp: '2026-11-22 22:39:36 UTC', pid: 5730 });
    expect(background).not.toHaveProperty('user', '');
    expect(background).not.toHaveProperty('database', '');
    expect(match('\tcontinuation')).toBeUndefined();
  });

  it('follows other prefixes: milliseconds, application name, session id, %%', () => {
    const match = compileLogPrefix('%m [%p] %q%u@%d [%a] %c %% ');
    expect(
      match('2026-11-22 22:39:36.123 CET [77] alice@db [DBeaver 24 - Main] 65a1.2f % LOG:  x')
        ?.fields,
    ).toEqual({
      timestamp: '2026-11-22 22:39:36.123 CET',
      pid: 77,
      user: 'alice',
      database: 'db',
      applicationName: 'DBeaver 24 - Main',
      sessionId: '65a1.2f',
    });
    expect(() => compileLogPrefix('%u%d')).toThrow(LogPrefixError);
  });

  it('counts %P as naming leaders only before %q, where a worker line still carries it', () => {
    expect(prefixLogsLeaderPid('%m [%p] %P %q%u@%d ')).toBe(true);
    // A parallel worker has no session: its line ends at %q, before this %P.
    expect(prefixLogsLeaderPid('%m [%p] %q%u@%d [%P] ')).toBe(false);
  });

  it('reads the parallel group leader (%P, csvlog and jsonlog leader_pid) only on a worker', () => {
    // As PostgreSQL 15 wrote them: the leader's own line has an empty %P.
    const withLeader = createAuditParser({ logLinePrefix: '%t:%r:%u@%d:[%p]:%P:' });
    const tail = 'LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.salaries,SELECT 1,<none>';
    const worker = withLeader(`2026-12-05 12:56:00 UTC::@:[32305]:32303:${tail}`);
    expect(worker).toMatchObject({ pid: 32305, leaderPid: 32303 });
    expect(worker?.user).toBeUndefined();
    expect(worker?.database).toBeUndefined();
    expect(
      withLeader(`2026-12-05 12:56:00 UTC:127.0.0.1(57710):alice@appdb:[32303]::${tail}`)
        ?.leaderPid,
    ).toBeUndefined();
    const csv = createAuditParser({ logFormat: 'csvlog' });
    const row = (who: string, leader: string) =>
      `2026-12-05 12:54:32.634 UTC,${who},29981,,6b140988.751d,1,,2026-12-05 12:54:32 UTC,4/3,0,LOG,00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.salaries,SELECT 1,<none>",,,,,,,,,"","parallel worker",${leader},0`;
    expect(csv(row(',', '29980'))).toMatchObject({ pid: 29981, leaderPid: 29980 });
    // Empty columns are values the worker does not have: absent, as jsonlog leaves them out.
    for (const field of ['user', 'database', 'remoteHost', 'applicationName'] as const)
      expect(csv(row(',', '29980'))?.[field]).toBeUndefined();
    expect(csv(row('"alice","appdb"', ''))?.leaderPid).toBeUndefined();
    const json = createAuditParser({ logFormat: 'jsonlog' });
    expect(
      json(
        '{"timestamp":"2026-12-05 12:54:32.634 UTC","pid":29981,"error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.salaries,SELECT 1,<none>","backend_type":"parallel worker","leader_pid":29980}',
      )?.leaderPid,
    ).toBe(29980);
  });

  it('converts UTC, GMT, offsets and epoch times to ISO 8601', () => {
    expect(toIsoTime('2026-11-22 22:39:36 UTC')).toBe('2026-11-22T22:39:36Z');
    expect(toIsoTime('2026-11-22 22:39:36.120 GMT')).toBe('2026-11-22T22:39:36.120Z');
    expect(toIsoTime('2026-11-22 22:39:36 +0530')).toBe('2026-11-22T22:39:36+05:30');
    expect(toIsoTime('2026-11-22 22:39:36 -03')).toBe('2026-11-22T22:39:36-03:00');
    expect(toIsoTime('2026-11-22 22:39:36 CET')).toBeUndefined();
    expect(toIsoTime('1795387176.500')).toBe('2026-11-22T22:39:36.500Z');
  });
});

describe('pgAudit CSV', () => {
  it('splits quoted and unquoted fields, doubled quotes, empty fields', () => {
    expect(splitCsv('a,"b,c","say ""hi""",,"",x')).toEqual(['a', 'b,c', 'say "hi"', '', '', 'x']);
    expect(splitCsv('a,')).toEqual(['a', '']);
    expect(splitCsv('"multi\nline"')).toEqual(['multi\nline']);
    expect(() => splitCsv('"open')).toThrow(/unterminated/);
    expect(() => splitCsv('"a"b')).toThrow(/after a quoted field/);
  });
});

describe('audit records', () => {
  it('reads every field of a SESSION record with ROWS', () => {
    const event = parse(
      `${PREFIX}LOG:  AUDIT: SESSION,12,3,WRITE,UPDATE,TABLE,public.items,UPDATE items SET a = 1,<none>,4`,
    );
    expect(event).toEqual({
      timestamp: '2026-11-22 22:39:36 UTC',
      time: '2026-11-22T22:39:36Z',
      remoteHost: '10.0.0.5',
      remotePort: 36646,
      user: 'alice',
      database: 'appdb',
      pid: 4273,
      severity: 'LOG',
      auditType: 'SESSION',
      statementId: 12,
      substatementId: 3,
      auditClass: 'WRITE',
      command: 'UPDATE',
      objectType: 'TABLE',
      objectName: 'public.items',
      statement: 'UPDATE items SET a = 1',
      parameterStatus: 'none',
      parameters: [],
      rows: 4,
    });
  });

  it('decodes the doubly quoted PARAMETER list', () => {
    const event = parse(
      `${PREFIX}LOG:  AUDIT: OBJECT,1,1,WRITE,INSERT,TABLE,public.t,"INSERT INTO t VALUES ($1, $2, $3)","1,""a,b"",""say """"hi"""""""`,
    );
    expect(event?.auditType).toBe('OBJECT');
    expect(event?.parameters).toEqual(['1', 'a,b', 'say "hi"']);
    expect(event?.rows).toBeUndefined();
    expect(
      parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT $1,single,1`)?.parameters,
    ).toEqual(['single']);
  });

  it('reports parameter markers', () => {
    const status = (marker: string) =>
      parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1,${marker}`)?.parameterStatus;
    expect(status('<none>')).toBe('none');
    expect(status('<not logged>')).toBe('not-logged');
    expect(status('<previously logged>')).toBe('previously-logged');
  });

  it('reads a bind value named like an Object.prototype member as a value, not a marker', () => {
    // One bind parameter is written unquoted: `constructor` or `__proto__` is the whole
    // PARAMETER field. Looked up in a plain object, it found Object's members and the value
    // was lost (status a function or Object.prototype, no parameters).
    for (const value of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const event = parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT $1,${value}`);
      expect(event?.parameterStatus).toBe('logged');
      expect(event?.parameters).toEqual([value]);
    }
  });

  it('keeps statement text as pgAudit logged it, before and after 17 (trimmed, no semicolon)', () => {
    const before = parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"SELECT 1;  ",<none>`);
    const after = parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1,<none>`);
    expect(before?.statement).toBe('SELECT 1;  ');
    expect(after?.statement).toBe('SELECT 1');
  });

  it('passes over non-audit lines and STATEMENT lines quoting an audit record', () => {
    expect(
      parse(`${PREFIX}LOG:  connection authorized: user=alice database=appdb`),
    ).toBeUndefined();
    expect(parse(`${PREFIX}ERROR:  relation "x" does not exist`)).toBeUndefined();
    expect(
      parse(`${PREFIX}STATEMENT:  SELECT 'LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>'`),
    ).toBeUndefined();
    expect(parse('random text')).toBeUndefined();
  });

  it("reads each record's own fields, whatever the record before it had", () => {
    // The parser reuses one array for a record's fields: a shorter record after a longer
    // one, or after one that failed half-way, must not see the other's.
    const record = (body: string) => parse(`${PREFIX}LOG:  AUDIT: ${body}`);
    expect(record('SESSION,1,1,WRITE,UPDATE,TABLE,public.t,"UPDATE t, u",<none>,7')?.rows).toBe(7);
    expect(record('SESSION,2,1,READ,SELECT,,,SELECT 1,<none>')).toMatchObject({
      statementId: 2,
      objectType: '',
      statement: 'SELECT 1',
      rows: undefined,
    });
    expect(() => record('SESSION,3,1,READ,SELECT,,,SELECT 1,<none>,1,extra')).toThrow(/11 fields/);
    expect(() => record('SESSION,4,1,READ,SELECT,,,"SELECT \'cut')).toThrow(AuditRecordError);
    expect(() => record('SESSION,5,1,READ')).toThrow(/4 fields/);
    expect(
      record('OBJECT,6,2,DDL,CREATE TABLE,TABLE,public.v,"CREATE TABLE v (a text)","1,""x"""'),
    ).toMatchObject({
      auditType: 'OBJECT',
      statementId: 6,
      substatementId: 2,
      statement: 'CREATE TABLE v (a text)',
      parameterStatus: 'logged',
      parameters: ['1', 'x'],
      rows: undefined,
    });
  });

  it('throws AuditRecordError for truncated or foreign-prefix audit records', () => {
    expect(() => parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"SELECT 'cut`)).toThrow(
      AuditRecordError,
    );
    expect(() => parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ`)).toThrow(/4 fields/);
    expect(() => parse(`${PREFIX}LOG:  AUDIT: OTHER,1,1,READ,SELECT,,,x,<none>`)).toThrow(
      /record type/,
    );
    expect(() => parse(`${PREFIX}LOG:  AUDIT: SESSION,x,1,READ,SELECT,,,x,<none>`)).toThrow(
      /STATEMENT_ID/,
    );
    expect(() => parse('[1] alice LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>')).toThrow(
      /log_line_prefix/,
    );
  });
});

describe('multi-line records', () => {
  it('joins TAB continuation lines of a file and one CloudWatch event alike', () => {
    const file = [
      `${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.items,"SELECT id,`,
      '\t\tname',
      '\t  FROM items;",<none>',
      `${PREFIX}LOG:  disconnection: session time: 0:00:01.000`,
      '',
    ].join('\n');
    const records = splitLogRecords(file);
    expect(records).toHaveLength(2);
    expect(parse(records[0]!)?.statement).toBe('SELECT id,\n\tname\n  FROM items;');
    const cloudWatchMessage = `${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.items,"SELECT id,\n\t\tname\n\t  FROM items;",<none>`;
    expect(splitLogRecords(cloudWatchMessage)).toEqual([records[0]]);
  });

  it('drops continuation lines without a first line and keeps CR as data (LF ends a line)', () => {
    expect(splitLogRecords('\torphan\nplain line\r\n')).toEqual(['plain line\r']);
    expect(splitLogRecords('a\rb\nc')).toEqual(['a\rb', 'c']);
  });
});

describe('noise by parsed fields when pgaudit.log_relation is off', () => {
  const read = (statement: string) =>
    classifyNoise({
      ...parse(`${PREFIX}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>`)!,
      statement,
    });

  it('treats relation-less reads as health checks, before and after pgAudit 17', () => {
    expect(read('SELECT 1')).toBe('health-check');
    expect(read('select 1;  ')).toBe('health-check');
    expect(read('SELECT current_schema(), session_user')).toBe('health-check');
    expect(read('SELECT * FROM generate_series(1, 3) g')).toBe('health-check');
  });

  it('drops catalog-only reads and keeps any read that touches an application table', () => {
    expect(
      read(
        'SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace',
      ),
    ).toBe('catalog-read');
    expect(read('SELECT * FROM pg_class c, pg_namespace AS n WHERE n.oid = c.relnamespace')).toBe(
      'catalog-read',
    );
    expect(read('SELECT * FROM information_schema.tables')).toBe('catalog-read');
    expect(read('SELECT * FROM pg_catalog.pg_class c, public.salaries s')).toBeUndefined();
    expect(
      read('SELECT * FROM pg_class WHERE relname IN (SELECT name FROM payroll)'),
    ).toBeUndefined();
    expect(read("SELECT 'FROM pg_class' AS x FROM items")).toBeUndefined();
    expect(read('SELECT * FROM "pg_catalog"."pg_class" -- FROM items')).toBe('catalog-read');
    expect(read('SELECT * FROM (SELECT * FROM items) s')).toBeUndefined();
  });

  it('never calls a read of files, large objects, other databases or decoded WAL noise', () => {
    for (const statement of [
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT * FROM pg_catalog.pg_read_binary_file('base/1/1259')",
      'SELECT lo_get(4242)',
      "SELECT convert_from(lo_get(4242), 'UTF8') FROM pg_class LIMIT 1",
      "SELECT * FROM dblink('dbname=other', 'SELECT * FROM cards') AS t(x text)",
      "SELECT * FROM pg_logical_slot_peek_changes('s', NULL, NULL)",
      "SELECT query_to_xml('SELECT * FROM cards', true, false, '')",
      // Comments, quoting and Unicode escapes do not hide the name.
      'SELECT "pg_read_file" /* x */ (\'/etc/passwd\')',
      'SELECT U&"\\0070g_read_file"(\'/etc/passwd\')',
    ])
      expect(read(statement), statement).toBeUndefined();
    expect(read("SELECT 'pg_read_file(x)' AS x")).toBe('health-check');
    // Anyone who may create a table may call it pg_something: only catalog names count.
    expect(read('SELECT * FROM pg_cards')).toBeUndefined();
    expect(read('SELECT * FROM pg_class, pg_cards')).toBeUndefined();
    expect(read('SELECT * FROM information_schema.stash')).toBeUndefined();
    expect(read('SELECT * FROM pg_toast.pg_toast_16384')).toBeUndefined();
    expect(read('SELECT data FROM pg_catalog.pg_largeobject')).toBeUndefined();
    expect(read('SELECT * FROM pg_stat_activity, information_schema.columns')).toBe('catalog-read');
  });

  it('never calls DML, DDL or a COPY noise', () => {
    const event = parse(
      `${PREFIX}LOG:  AUDIT: SESSION,1,1,WRITE,UPDATE,TABLE,pg_catalog.pg_class,UPDATE pg_class SET x = 1,<none>`,
    )!;
    expect(classifyNoise(event)).toBeUndefined();
    expect(read('COPY items TO STDOUT')).toBeUndefined();
  });
});
