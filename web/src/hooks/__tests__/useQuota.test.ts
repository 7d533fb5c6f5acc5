import { describe, expect, it } from "vitest";
import type { QuotaStatus } from "../../api/types";
import { quotaNotice } from "../useQuota";

function quota(turns: [number, number], tokens: [number, number], resetsIn = 3 * 3600 + 600): QuotaStatus {
  return {
    day: "2026-12-03",
    turns: { used: turns[0], limit: turns[1] },
    tokens: { used: tokens[0], limit: tokens[1] },
    resets_in: resetsIn,
  };
}

describe("quotaNotice", () => {
  it("says nothing without limits or with plenty left", () => {
    expect(quotaNotice(quota([50, 0], [10_000, 0]))).toBeNull();
    expect(quotaNotice(quota([10, 100], [1_000, 100_000]))).toBeNull();
  });

  it("counts down messages when a fifth or less is left, and says when it renews", () => {
    expect(quotaNotice(quota([8, 10], [0, 0]))).toBe("2 messages left today (your quota renews in 3 h 10 min, at midnight UTC).");
    expect(quotaNotice(quota([9, 10], [0, 0]))).toMatch(/^1 message left today/);
    expect(quotaNotice(quota([1, 1], [0, 0], 600))).toBe("No messages left today (your quota renews in 10 min, at midnight UTC).");
  });

  it("names tokens too, and both at once", () => {
    expect(quotaNotice(quota([0, 0], [95_000, 100_000]))).toMatch(/^5,000 tokens left today/);
    expect(quotaNotice(quota([3, 3], [100_000, 100_000]))).toMatch(/^No messages left today, no tokens left today/);
  });
});
