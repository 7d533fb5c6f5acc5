import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown } from "../Markdown";

function html(content: string): HTMLElement {
  return render(<Markdown content={content} />).container;
}

describe("Markdown is rendered safely", () => {
  it("shows raw HTML as text and never creates its elements", () => {
    const el = html('Look: <img src=x onerror=alert(1)> and <script>alert(2)</script>\n\n<iframe src="https://evil"></iframe>');
    expect(el.querySelector("img, script, iframe")).toBeNull();
    expect(el.textContent).toContain("<img src=x onerror=alert(1)>");
    for (const node of el.querySelectorAll("*")) {
      for (const attr of node.attributes) expect(attr.name.startsWith("on")).toBe(false);
    }
  });

  it("neutralises javascript:, data: and vbscript: links but keeps the text", () => {
    const el = html("[click me](javascript:alert(1)) [data](data:text/html,<b>x</b>) [vb](vbscript:msgbox) <javascript:alert(1)>");
    for (const a of el.querySelectorAll("a")) expect(a.getAttribute("href") ?? "").not.toMatch(/^(javascript|data|vbscript):/i);
    expect(el.textContent).toContain("click me");
  });

  it("opens links in a new tab without giving the page an opener", () => {
    const a = html("[docs](https://example.org/x)").querySelector("a")!;
    expect(a.getAttribute("href")).toBe("https://example.org/x");
    expect(a.getAttribute("target")).toBe("_blank");
    expect(a.getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("does not load images from replies; it links them", () => {
    const el = html("![chart](https://tracker.example/p.png?secret=1)");
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector("a")?.textContent).toBe("Image: chart");
  });
});

describe("Markdown features", () => {
  it("renders GFM tables, task lists and strikethrough", () => {
    const el = html("| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~");
    expect(el.querySelectorAll("table td")).toHaveLength(2);
    expect(el.querySelector("input[type=checkbox]")).not.toBeNull();
    expect(el.querySelector("del")?.textContent).toBe("old");
  });

  it("highlights code with a language label and a copy button", () => {
    const el = html("```python\ndef f(x):\n    return x\n```");
    expect(el.querySelector(".codeblock__lang")?.textContent).toBe("python");
    expect(el.querySelector(".hljs-keyword")?.textContent).toBe("def");
    expect(el.querySelector("button")?.getAttribute("aria-label")).toBe("Copy python code");
  });

  it("typesets math with KaTeX", () => {
    const el = html("Euler: $e^{i\\pi} + 1 = 0$\n\n$$\n\\int_0^1 x\\,dx\n$$");
    expect(el.querySelectorAll(".katex").length).toBeGreaterThanOrEqual(2);
    expect(el.querySelector(".katex-display")).not.toBeNull();
  });

  it("refuses KaTeX's \\href to javascript:", () => {
    const el = html("$\\href{javascript:alert(1)}{x}$");
    for (const a of el.querySelectorAll("a")) expect(a.getAttribute("href") ?? "").not.toMatch(/^javascript:/i);
  });
});

describe("dollars and maths", () => {
  it("leaves amounts of money alone", () => {
    const el = html("It costs $5 and $10 at the harbour, or $3.50 each.");
    expect(el.querySelector(".katex")).toBeNull();
    expect(el.textContent).toBe("It costs $5 and $10 at the harbour, or $3.50 each.");
  });

  it("still typesets inline maths", () => {
    const el = html("Inline $x^2 + y^2$ here, and $a$.");
    expect(el.querySelectorAll(".katex")).toHaveLength(2);
    expect(el.querySelector(".katex-display")).toBeNull();
  });

  it("makes one-line $$…$$ on its own a block, inside a sentence stays inline", () => {
    expect(html("$$E = mc^2$$").querySelector(".katex-display")).not.toBeNull();
    expect(html("$$\nE = mc^2\n$$").querySelector(".katex-display")).not.toBeNull();
    const inline = html("so $$E = mc^2$$ holds");
    expect(inline.querySelector(".katex-display")).toBeNull();
    expect(inline.querySelector(".katex")).not.toBeNull();
  });

  it("keeps dollars in code as typed", () => {
    expect(html("`$PATH` and `$5 and $10`").querySelector(".katex")).toBeNull();
  });
});
