import { describe, expect, it } from "vitest";
import { compareEventIds, isAlreadyApplied, isEventId } from "../eventId";

describe("event ids", () => {
  it("compares both parts numerically, not as strings", () => {
    expect(compareEventIds("999-0", "1000-0")).toBeLessThan(0);
    expect(compareEventIds("1000-10", "1000-9")).toBeGreaterThan(0);
    expect(compareEventIds("1700000000000-3", "1700000000000-3")).toBe(0);
    expect(compareEventIds("99999999999999999999-1", "99999999999999999999-2")).toBeLessThan(0);
  });

  it("treats ids at or before the last applied as duplicates", () => {
    expect(isAlreadyApplied("5-1", null)).toBe(false);
    expect(isAlreadyApplied("5-1", "5-1")).toBe(true);
    expect(isAlreadyApplied("5-0", "5-1")).toBe(true);
    expect(isAlreadyApplied("6-0", "5-9")).toBe(false);
  });

  it("recognises only stream ids", () => {
    expect(isEventId("1-0")).toBe(true);
    expect(isEventId("1")).toBe(false);
    expect(isEventId(null)).toBe(false);
    expect(isEventId("a-b")).toBe(false);
  });
});
