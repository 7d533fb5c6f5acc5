import { describe, expect, it, vi } from "vitest";
import { createStore } from "../store";

describe("createStore", () => {
  it("tells subscribers about changes only, and stops after unsubscribe", () => {
    const store = createStore((n: number, by: number) => n + by, 0);
    const listener = vi.fn();
    const off = store.subscribe(listener);
    store.dispatch(2);
    store.dispatch(0); // same state: nobody is told
    expect(store.getState()).toBe(2);
    expect(listener).toHaveBeenCalledTimes(1);
    off();
    store.dispatch(1);
    expect(listener).toHaveBeenCalledTimes(1);
  });
});
