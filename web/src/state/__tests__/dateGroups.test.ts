import { describe, expect, it } from "vitest";
import type { ConversationSummary } from "../../protocol.gen";
import { dateGroupOf, groupByDate } from "../dateGroups";

const at = (y: number, m: number, d: number, h = 12, min = 0) => new Date(y, m - 1, d, h, min).getTime() / 1000;
const conv = (id: string, updated: number): ConversationSummary => ({ id, title: id, created_at: updated, updated_at: updated });

describe("date grouping", () => {
  const now = new Date(2024, 2, 15, 9, 30); // 15 March 2024, 09:30 local

  it("puts the local calendar day, not the last 24 hours, under Today and Yesterday", () => {
    expect(dateGroupOf(at(2024, 3, 15, 0, 1), now)).toBe("Today");
    expect(dateGroupOf(at(2024, 3, 14, 23, 59), now)).toBe("Yesterday");
    expect(dateGroupOf(at(2024, 3, 14, 0, 0), now)).toBe("Yesterday");
    expect(dateGroupOf(at(2024, 3, 13, 23, 0), now)).toBe("Previous 7 days");
    expect(dateGroupOf(at(2024, 3, 8, 1, 0), now)).toBe("Previous 7 days");
    expect(dateGroupOf(at(2024, 3, 7, 23, 0), now)).toBe("Older");
    expect(dateGroupOf(at(2023, 1, 1), now)).toBe("Older");
  });

  it("counts a clock slightly ahead as today", () => {
    expect(dateGroupOf(at(2024, 3, 15, 9, 31), now)).toBe("Today");
  });

  it("survives a daylight-saving change inside the week", () => {
    // Whatever the zone, 10 calendar days earlier is older and 2 days earlier is within the week.
    const afterDst = new Date(2024, 3, 2, 8, 0);
    expect(dateGroupOf(at(2024, 3, 31, 8, 0), afterDst)).toBe("Previous 7 days");
    expect(dateGroupOf(at(2024, 3, 23, 8, 0), afterDst)).toBe("Older");
  });

  it("orders newest first and drops empty groups", () => {
    const groups = groupByDate(
      [conv("old", at(2024, 1, 1)), conv("today2", at(2024, 3, 15, 9)), conv("today1", at(2024, 3, 15, 8)), conv("week", at(2024, 3, 10))],
      now,
    );
    expect(groups.map((g) => g.label)).toEqual(["Today", "Previous 7 days", "Older"]);
    expect(groups[0]!.items.map((c) => c.id)).toEqual(["today2", "today1"]);
  });
});
