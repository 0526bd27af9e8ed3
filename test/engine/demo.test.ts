import { Writable } from 'node:stream';
import { runDemo } from '../../src/demo';

describe('audit-trail demo', () => {
  it('shows the history, an as-of answer and a clean verify on embedded PostgreSQL', async () => {
    let printed = '';
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        printed += chunk.toString();
        done();
      },
    });
    const result = await runDemo({ out });
    expect(result.historyOperations).toEqual(['SNAPSHOT', 'UPDATE', 'UPDATE']);
    expect(result.asOfPrice).toBe('12.50');
    expect(result.verifyOk).toBe(true);
    expect(result.context).toEqual({
      actor: 'alice@example.com',
      onBehalfOf: null,
      requestId: 'req-7f3a',
      client: null,
      reason: 'restock TICKET-42',
      metadata: null,
    });
    expect(printed).toMatch(
      /UPDATE {4}\{"id":2\} {2}price "4\.50" -> "4\.75" {2}by alice@example\.com/,
    );
    expect(printed).toMatch(/UPDATE {4}\{"id":1\} {2}price "9\.99" -> "12\.50"/);
    // The context is set with the recommended helper (BEGIN and the context row in one
    // round trip) and printed as history returned it.
    expect(printed).toContain('with beginWithAuditContext(client, { actor, reason, requestId })');
    expect(printed).not.toContain('setAuditContext');
    expect(printed).toContain(
      'who and why (context): actor alice@example.com, reason "restock TICKET-42", request req-7f3a',
    );
    expect(printed).toContain(
      'OK   public.items: 3 source rows, 3 live audit rows, 3 live staging rows, 0 mismatches',
    );
  });
});
