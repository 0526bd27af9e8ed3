import { plaintextHost, warnIfPlaintext } from '../../src/postgres/tls';

describe('plaintext connection warning', () => {
  it('flags a non-loopback host when no TLS is asked for', () => {
    expect(plaintextHost('postgres://u:p@db.example.com/audit')).toBe('db.example.com');
    expect(plaintextHost('postgres://u:p@10.0.0.5:5432/audit?sslmode=disable')).toBe('10.0.0.5');
    expect(plaintextHost('postgres://u:p@db.example.com/audit?ssl=false')).toBe('db.example.com');
  });

  it('stays quiet for TLS and for loopback or Unix sockets', () => {
    for (const url of [
      'postgres://u:p@db.example.com/audit?sslmode=verify-full',
      'postgres://u:p@db.example.com/audit?sslmode=require',
      'postgres://u:p@db.example.com/audit?ssl=true',
      'postgres://u:p@localhost:5432/audit',
      'postgres://u:p@127.0.0.1:5432/audit',
      'postgres://u:p@[::1]:5432/audit',
      'postgres://u:p@/audit?host=%2Fvar%2Frun%2Fpostgresql',
    ]) {
      expect(plaintextHost(url), url).toBeUndefined();
    }
  });

  it('warns once per host on the given stream', () => {
    const lines: string[] = [];
    const write = (line: string) => {
      lines.push(line);
      return true;
    };
    warnIfPlaintext('postgres://u:p@warn-once.example.com/a', write);
    warnIfPlaintext('postgres://u:p@warn-once.example.com/b', write);
    warnIfPlaintext('postgres://u:p@warn-once.example.com/a?sslmode=verify-full', write);
    expect(lines).toEqual([
      expect.stringMatching(/warning: connecting to warn-once\.example\.com without TLS/),
    ]);
    expect(lines[0]).not.toContain('u:p');
  });
});
