/**
 * Child processes a test starts (sipbob, SIPp, redis-server) are killed when the test process
 * exits: whatever a test forgets, or a failed assertion skips, must not outlive the run on a
 * shared machine.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Kill child at exit unless it exited before. */
export function killAtExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}
