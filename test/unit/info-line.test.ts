import t, { type Test } from 'tap';
import { pino } from 'pino';
import { InfoLine } from '../../src/log/info-line.js';
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
  delete viaPino!.time;
  delete ours!.time;
  t.same(Object.keys(ours!), Object.keys(viaPino!), 'same keys in the same order');
  t.same(ours, viaPino);
}

t.test('an info line reads exactly as pino writes it, bindings included', async (t) => {
  const out = recorder();
  const log = pino({ base: { name: 'sipbob' } }, out).child({ room: 'proxy' });
  const fields = {
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
  log.info(fields, 'call outcome');
  const line = new InfoLine(log);
  t.equal(line.enabled, true);
  line.write(callOutcomeMembers(fields));
  sameAsPino(t, out.lines);
});

t.test('the call ended line reads as pino writes it', async (t) => {
  const out = recorder();
  const log = pino({ base: { name: 'sipbob' } }, out);
  const call = {
    callId: 'c2@h',
    parties: [
      { extension: '200', device: 'anna-desk', direction: 'inbound' as const },
      { extension: '100', device: 'Jürgen "J"', direction: 'outbound' as const },
    ],
  };
  log.info({ callId: call.callId, parties: call.parties, why: 'bye' }, 'call ended');
  new InfoLine(log).write(callEndedMembers(call, 'bye'));
  sameAsPino(t, out.lines);
});

t.test('an info line respects the level', async (t) => {
  const out = recorder();
  const log = pino({ level: 'warn' }, out);
  t.equal(new InfoLine(log).enabled, false);
  new InfoLine(log).write('"callId":"x","msg":"call ended"');
  t.same(out.lines, [], 'nothing below the configured level');
  log.level = 'info';
  new InfoLine(log).write('"callId":"x","msg":"call ended"');
  t.equal(out.lines.length, 1, 'written once the level allows it');
  t.equal((JSON.parse(out.lines[0]!) as { level: number }).level, 30);
});
