import { describe, expect, it } from "vitest";
import { backoffDelay } from "../backoff";

describe("reconnect backoff", () => {
  const opts = { baseMs: 500, maxMs: 30_000 };

  it("doubles per attempt between half and all of the ceiling", () => {
    expect(backoffDelay(0, () => 0, opts)).toBe(250);
    expect(backoffDelay(0, () => 0.999999, opts)).toBe(500);
    expect(backoffDelay(1, () => 0, opts)).toBe(500);
    expect(backoffDelay(3, () => 0.5, opts)).toBe(3000);
  });

  it("never exceeds the cap, however many attempts", () => {
    for (const attempt of [6, 7, 20, 1000]) {
      expect(backoffDelay(attempt, () => 0.999999, opts)).toBeLessThanOrEqual(30_000);
      expect(backoffDelay(attempt, () => 0, opts)).toBe(15_000);
    }
  });

  it("spreads clients out (jitter)", () => {
    const delays = new Set([0.1, 0.4, 0.7, 0.9].map((r) => backoffDelay(4, () => r, opts)));
    expect(delays.size).toBe(4);
  });
});
