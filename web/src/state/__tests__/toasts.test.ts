import { describe, expect, it } from "vitest";
import { reduceToasts, type ToastState } from "../toasts";

describe("toasts", () => {
  it("keeps at most four, newest last", () => {
    let state: ToastState = { toasts: [], nextId: 1 };
    for (let i = 0; i < 6; i++) state = reduceToasts(state, { type: "add", kind: "error", message: `e${i}` });
    expect(state.toasts.map((t) => t.message)).toEqual(["e2", "e3", "e4", "e5"]);
  });

  it("dismisses by id", () => {
    let state: ToastState = { toasts: [], nextId: 1 };
    state = reduceToasts(state, { type: "add", kind: "info", message: "a" });
    state = reduceToasts(state, { type: "add", kind: "error", message: "b" });
    state = reduceToasts(state, { type: "dismiss", id: 1 });
    expect(state.toasts).toEqual([{ id: 2, kind: "error", message: "b" }]);
  });
});
