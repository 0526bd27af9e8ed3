import type { BenchCase } from '.';
import { accessAuditSchema } from '../../src/config/access-audit';
import { AccessAuditPipeline, splitLogRecords } from '../../src/access-audit';
import { figure } from '../lib/figures';
import { buildCorpus } from '../lib/pgaudit-corpus';
import { median, round, roundSpread, spread } from '../lib/stats';
import { measureLambda } from './lambda';

/**
 * Case 5: pgAudit log lines through record assembly, parsing and the rule engine
 * (what `pgaudit scan` and the Lambda do per record), then the Lambda handler on a
 * 1 MB CloudWatch Logs subscription payload.
 */
export const parserCase: BenchCase = {
  title: 'pgAudit parser + rules, and the alert Lambda on a 1 MB payload',
  figures: ['parser_lines_per_s'],
  async run(ctx) {
    const corpus = buildCorpus(ctx.profile.parserLines);
    const config = accessAuditSchema.parse({
      auditedRoles: ['alice', 'bob', 'carol', 'dave'],
      serviceAccounts: ['app_svc'],
    });
    const verdicts: Record<string, number> = {};
    // The whole pipeline pgaudit scan and the Lambda run: parse, forgery check, rules, duplicates.
    const pass = (count: boolean) => {
      const pipeline = new AccessAuditPipeline(config);
      const tally = (outcomes: ReturnType<typeof pipeline.push>) => {
        if (!count) return;
        for (const outcome of outcomes) {
          const kind = outcome.kind === 'verdict' ? outcome.verdict.kind : 'unreadable';
          verdicts[kind] = (verdicts[kind] ?? 0) + 1;
        }
      };
      for (const record of splitLogRecords(corpus.text)) tally(pipeline.push(record, undefined));
      tally(pipeline.flush());
    };
    pass(true); // warm-up (JIT), and the verdict mix for the report
    const linesPerS: number[] = [];
    const linesPerCpuS: number[] = [];
    for (let round = 0; round < ctx.profile.parserRounds; round++) {
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      pass(false);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const used = process.cpuUsage(cpu);
      linesPerS.push(corpus.lines / seconds);
      linesPerCpuS.push(corpus.lines / ((used.user + used.system) / 1e6));
    }
    const mbPerLine = corpus.bytes / corpus.lines / 1e6;
    const lambda = await measureLambda(ctx);
    const rate = median(linesPerS);
    ctx.log(`  ${rate.toFixed(0)} lines/s, ${(rate * mbPerLine).toFixed(1)} MB/s`);
    return {
      figures: [
        figure('parser_lines_per_s', round(rate, 4), {
          detail: {
            perRound: roundSpread(spread(linesPerS)),
            // Single-threaded: lines per second of CPU this process actually got, which
            // is what one unshared core would deliver (wall-clock suffers on a loaded machine).
            linesPerCpuSecond: roundSpread(spread(linesPerCpuS)),
            mbPerS: round(rate * mbPerLine, 3),
            lambda1MbPayload: lambda,
          },
        }),
      ],
      detail: {
        corpus: { lines: corpus.lines, records: corpus.records, bytes: corpus.bytes },
        verdicts,
        lambda1MbPayload: lambda,
      },
    };
  },
};
