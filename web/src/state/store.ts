/**
 * A reducer behind a tiny external store: components read the slice they
 * show with `useSyncExternalStore` and a selector, so a streamed chunk
 * re-renders the message list and not the sidebar or the header. No React
 * here: the store is plain state + dispatch + subscribe.
 */
export interface Store<S, A> {
  getState(): S;
  dispatch(action: A): void;
  /** Called after every dispatch that changed the state; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
}

export function createStore<S, A>(reducer: (state: S, action: A) => S, initial: S): Store<S, A> {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    getState: () => state,
    dispatch(action) {
      const next = reducer(state, action);
      if (next === state) return;
      state = next;
      for (const listener of [...listeners]) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
