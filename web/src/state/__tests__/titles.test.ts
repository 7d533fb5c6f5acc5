import { describe, expect, it } from "vitest";
import { plainTitle } from "../titles";

describe("plainTitle", () => {
  it.each([
    ["**Bold** ideas for `tidal` _energy_", "Bold ideas for tidal energy"],
    ["# Tides explained", "Tides explained"],
    ["~~old~~ new plan", "old new plan"],
    ["See [the chart](https://example.org) now", "See the chart now"],
    ["snake_case_name and 2*3*4", "snake_case_name and 2*3*4"],
    ["Plain title", "Plain title"],
  ])("%s -> %s", (raw, shown) => {
    expect(plainTitle(raw)).toBe(shown);
  });
});
