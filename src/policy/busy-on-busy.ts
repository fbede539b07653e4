/**
 * Busy on Busy (interface.md table): a pure decision. "A call is up" is a confirmed dialog in
 * which a device of the extension is caller or callee; the call tracker is the only writer of
 * that count, so this function needs nothing but the count.
 */
export type RingDecision = 'ring' | 'busy';

export function decideNewCall(busyOnBusy: boolean, confirmedCalls: number): RingDecision {
  return busyOnBusy && confirmedCalls > 0 ? 'busy' : 'ring';
}
