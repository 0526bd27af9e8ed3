import { describe, expect, it } from 'vitest';
import {
  alertDocument,
  alertMessage,
  alertText,
  digestMessage,
  unreadableRecordMessage,
  type LocatedAlert,
} from '../../src/lambda/access-alert/messages';
import type { AuditEvent } from '../../src/access-audit/types';

const settings = { subjectPrefix: '[audit]', maxStatementLength: 4000 };

/** Statements whose JSON needs every kind of escape, and some that need none. */
const STATEMENTS = [
  'SELECT 1',
  `SELECT '"\\' -- \u0000\u0001\u001f\u007f \u2028 é 中文 😀`,
  "UPDATE t SET a = 'lone \ud800 and \udfff surrogates'",
  `INSERT INTO t VALUES ('${'"\\'.repeat(1000)}')`,
];

function located(statement: string, index: number): LocatedAlert {
  const event: AuditEvent = {
    severity: 'LOG',
    auditType: 'SESSION',
    statementId: index,
    substatementId: 1,
    auditClass: 'WRITE',
    command: 'UPDATE',
    objectType: 'TABLE',
    objectName: 'public."odd""name"',
    statement,
    parameterStatus: 'logged',
    parameters: [statement, '\n'],
    user: `alice "${index}"`,
    database: 'appdb',
    time: '2026-11-30T22:39:49.940668+00:00',
  };
  return {
    alert: { rule: 'human-dml', severity: 'medium', summary: `alice ran ${statement}`, event },
    source: { logGroup: 'group', logStream: 'stream\t1', logEventId: `e${index}` },
  };
}

/** The SNS `MessageStructure: json` body as JSON.stringify writes it: one key per protocol. */
const structure = (text: string, json: string) =>
  JSON.stringify({ default: text, email: text, https: json, http: json, sqs: json, lambda: json });

describe('SNS alert messages: the MessageStructure json body', () => {
  it('is byte for byte JSON.stringify of the text and document for every protocol', () => {
    for (const [index, statement] of STATEMENTS.entries()) {
      const alert = located(statement, index);
      expect(alertMessage(alert, settings).message).toBe(
        structure(alertText(alert, settings), JSON.stringify(alertDocument(alert, settings))),
      );
    }
  });

  it('cuts text and document alike when the message must shrink to fit SNS', () => {
    // 100 bind values of 1,000 quotes: about 1.6 MB once escaped for the six protocols,
    // over the 240 KiB budget at the first step; the second (statements 1,000, 20 values
    // of 200 characters) fits. Text and document are each cut to that step.
    const big = located(`UPDATE t SET a = '${'x'.repeat(5000)}'`, 9);
    const event = {
      ...big.alert.event,
      parameters: Array.from({ length: 100 }, () => '"'.repeat(1000)),
    };
    const alert = { ...big, alert: { ...big.alert, event } };
    const second = { statement: 1000, parameter: 200, parameters: 20, digestEntries: 20 };
    const first = { statement: 4000, parameter: 1000, parameters: 100, digestEntries: 50 };
    const message = alertMessage(alert, settings).message;
    expect(
      structure(
        alertText(alert, settings, first),
        JSON.stringify(alertDocument(alert, settings, first)),
      ).length,
    ).toBeGreaterThan(240 * 1024);
    expect(message).toBe(
      structure(
        alertText(alert, settings, second),
        JSON.stringify(alertDocument(alert, settings, second)),
      ),
    );
    expect(message).toContain('(truncated)');
  });

  it('carries the attributes that have a value, in order, and no others', () => {
    const alert = located('GRANT x TO y', 1);
    const { user: _user, database: _database, ...anonymous } = alert.alert.event;
    const withoutUser = { ...alert, alert: { ...alert.alert, event: anonymous } };
    const full = alertMessage(alert, settings).attributes;
    expect(Object.keys(full)).toEqual([
      'kind',
      'severity',
      'rule',
      'user',
      'database',
      'auditClass',
      'command',
      'dedupKey',
    ]);
    expect(full.user).toEqual({ DataType: 'String', StringValue: 'alice "1"' });
    expect(Object.keys(alertMessage(withoutUser, settings).attributes)).toEqual([
      'kind',
      'severity',
      'rule',
      'auditClass',
      'command',
      'dedupKey',
    ]);
  });

  it('digests and unreadable-record alerts carry the same structure, text and JSON per protocol', () => {
    const digest = digestMessage(STATEMENTS.map(located), settings);
    const unreadable = unreadableRecordMessage(
      [{ streamArn: 'arn:"x"', sequenceNumber: '1', errors: ['decrypt: "bad" \u0000 😀'] }],
      settings,
    );
    for (const message of [digest, unreadable]) {
      const body = JSON.parse(message.message) as Record<string, string>;
      expect(Object.keys(body)).toEqual(['default', 'email', 'https', 'http', 'sqs', 'lambda']);
      expect(message.message).toBe(structure(body.default!, body.https!));
      expect(body.email).toBe(body.default);
      for (const key of ['http', 'sqs', 'lambda']) expect(body[key]).toBe(body.https);
    }
  });
});
