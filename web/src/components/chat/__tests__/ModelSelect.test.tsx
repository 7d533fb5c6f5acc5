import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { ModelInfo } from "../../../api/types";
import { ModelSelect } from "../ModelSelect";

function model(id: string, tools?: string[]): ModelInfo {
  return { id, label: id.toUpperCase(), context_window: 8192, max_tokens: 512, default: false, suggestions: [], tools };
}

const MODELS = [model("plain"), model("tooly", ["calc", "files"])];

describe("the model picker's tools indicator", () => {
  afterEach(cleanup);

  it("marks the models with tools in the list, and badges the chosen one with its servers", () => {
    render(<ModelSelect models={MODELS} value="tooly" onChange={() => {}} />);
    const options = screen.getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["PLAIN", "TOOLY · tools"]);
    const badge = screen.getByRole("note");
    expect(badge.getAttribute("aria-label")).toBe("Tools: calc, files");
    expect(badge.textContent).toBe("calc, files");
  });

  it("shows no badge for a model without tools", () => {
    render(<ModelSelect models={MODELS} value="plain" onChange={() => {}} />);
    expect(screen.queryByRole("note")).toBeNull();
  });
});
