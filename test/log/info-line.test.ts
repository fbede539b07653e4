import t, { type Test } from 'tap';
import { pino, type Logger } from 'pino';
import { InfoLine } from '../../src/log/info-line.js';
import { createLogger, sinkOf } from '../../src/log/logger.js';
import { callEndedMembers, callOutcomeMembers } from '../../src/lib/json-text.js';

function recorder(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return { lines, write: (s: string) => void lines.push(s) };
}

/** The two recorded lines (pino's, then ours) are the same but for their time. */
function sameAsPino(t: Test, lines: string[]): void {
  t.equal(lines.length, 2);
  t.ok(lines.every((l) => l.endsWith('}\n') && l.indexOf('\n') === l.length - 1), 'one line each');
  const [viaPino, ours] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(typeof ours!.time === 'number' && Math.abs((ours!.time as number) - Date.now()) < 5000, 'a time in ms');
  t.equal(lines[1]!.replace(/"time":\d+/, ''), lines[0]!.replace(/"time":\d+/, ''), 'byte for byte but the time');
  delete viaPino!.time;
  delete ours!.time;
  t.same(Object.keys(ours!), Object.keys(viaPino!), 'same keys in the same order');
  t.same(ours, viaPino);
}

const outcome = {
  callId: 'c1@"quoted"\\',
  extension: '200',
  from: 'bench-caller',
  outcome: 'answered',
  status: 200,
  branches: [
    { device: 'desk', status: 200, cancelled: false },
    { device: 'soft', status: 0, cancelled: true },
  ],
};

const ended = {
  callId: 'c2@h',
  parties: [
    { extension: '200', device: 'anna-desk', direction: 'inbound' as const },
    { extension: '100', device: 'Jürgen "J"', direction: 'outbound' as const },
  ],
};

/** A logger from createLogger (lines go straight to the sink), or plain pino (through log.info). */
const makers: Array<[string, (out: ReturnType<typeof recorder>, level?: string) => Logger]> = [
  ['createLogger', (out, level = 'info') => createLogger({ level, base: { name: 'sipbob' } }, out)],
  ['plain pino', (out, level = 'info') => pino({ level, base: { name: 'sipbob' } }, out)],
];

for (const [kind, make] of makers) {
  t.test(`${kind}: the call outcome line reads exactly as pino writes it, bindings included`, async (t) => {
    const out = recorder();
    const log = make(out).child({ room: 'proxy' }).child({ part: 'fork' });
    t.equal(sinkOf(log) === out, kind === 'createLogger', 'grandchildren know the sink');
    log.info(outcome, 'call outcome');
    const line = new InfoLine(log);
    t.equal(line.enabled, true);
    line.write(callOutcomeMembers(outcome));
    sameAsPino(t, out.lines);
  });

  t.test(`${kind}: the call ended line reads as pino writes it`, async (t) => {
    const out = recorder();
    const log = make(out);
    log.info({ callId: ended.callId, parties: ended.parties, why: 'bye' }, 'call ended');
    new InfoLine(log).write(callEndedMembers(ended, 'bye'));
    sameAsPino(t, out.lines);
  });

  t.test(`${kind}: an info line respects the level, also when it changes`, async (t) => {
    const out = recorder();
    const log = make(out, 'warn');
    const line = new InfoLine(log);
    t.equal(line.enabled, false);
    line.write('"callId":"x","msg":"call ended"');
    t.same(out.lines, [], 'nothing below the configured level');
    log.level = 'info';
    t.equal(line.enabled, true);
    line.write('"callId":"x","msg":"call ended"');
    t.equal(out.lines.length, 1, 'written once the level allows it');
    t.equal((JSON.parse(out.lines[0]!) as { level: number }).level, 30);
  });
}

t.test('lines keep their order with the logger\'s other lines', async (t) => {
  const out = recorder();
  const log = createLogger({ level: 'info', base: { name: 'sipbob' } }, out);
  log.info('before');
  new InfoLine(log).write('"callId":"x","msg":"call ended"');
  log.info('after');
  t.same(out.lines.map((l) => (JSON.parse(l) as { msg: string }).msg), ['before', 'call ended', 'after']);
});
