/**
 * A typed listener list: how a store announces its changes to whoever subscribes (persistence,
 * metrics, later replication or busy lamps), as Kamailio's usrloc runs its callbacks. Stores emit
 * on every REGISTER and every call, so emit is a plain loop over an array: no name lookup, and
 * nothing allocated besides the event the store passes in.
 */
export type Listener<E> = (event: E) => void;

export class Listeners<E> {
  /** Replaced, never mutated, on add/remove: a listener added or removed during emit takes effect from the next emit. */
  private fns: readonly Listener<E>[] = [];

  /** Subscribes fn; returns a function that unsubscribes it. */
  add(fn: Listener<E>): () => void {
    this.fns = [...this.fns, fn];
    return () => {
      this.fns = this.fns.filter((f) => f !== fn);
    };
  }

  get size(): number {
    return this.fns.length;
  }

  /** Calls each listener in the order added. A listener must not throw: the store has changed already. */
  emit(event: E): void {
    const fns = this.fns;
    for (let i = 0; i < fns.length; i++) fns[i]!(event);
  }
}
