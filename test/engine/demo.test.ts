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
    expect(printed).toMatch(/UPDATE {4}\{"id":1\} {2}price "9\.99" -> "12\.50"/);
    expect(printed).toContain(
      'OK   public.items: 3 source rows, 3 live audit rows, 3 live staging rows, 0 mismatches',
    );
  });
});
