/**
 * The Markdown pipeline. Raw HTML is never rendered: there is no rehype-raw,
 * and HTML in a message is turned into plain text (shown as typed, like
 * ChatGPT does) by `htmlAsText`. Link targets go through react-markdown's
 * default URL filter, which keeps http(s), mailto and relative URLs and
 * empties the rest (`javascript:`, `data:`, `vbscript:`...); an emptied link
 * renders as plain text.
 */
import type { Options } from "react-markdown";
import rehypeKatex from "rehype-katex";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";
import { rehypeHighlightCode } from "./rehypeHighlightCode";

interface MdNode {
  type: string;
  value?: string;
  children?: MdNode[];
  position?: { start: { offset?: number }; end: { offset?: number } };
  data?: Record<string, unknown>;
}

/** remark plugin: `html` nodes become `text` nodes, so `<img onerror=...>` shows as those characters. */
export function htmlAsText() {
  const walk = (node: MdNode): void => {
    if (node.type === "html") node.type = "text";
    node.children?.forEach(walk);
  };
  return (tree: MdNode) => walk(tree);
}

/**
 * remark plugin, after remark-math: dollars in prose are money more often than
 * maths. Pandoc's rule decides: `$…$` is maths only if the opening `$` is not
 * followed by a space, the closing one not preceded by a space nor followed
 * by a digit ("it costs $5 and $10" stays text). And `$$…$$` alone in a
 * paragraph on one line is display maths, as it would be on three lines.
 */
export function mathGuards() {
  return (tree: MdNode, file: { value?: unknown }) => {
    const source = typeof file.value === "string" ? file.value : "";
    const walk = (node: MdNode): void => {
      const children = node.children;
      if (!children) return;
      for (let i = 0; i < children.length; i++) {
        const child = children[i]!;
        if (child.type === "paragraph" && isLoneDisplayMath(child, source)) {
          children[i] = displayMath(child.children![0]!.value ?? "", child);
        } else if (child.type === "inlineMath" && !isProperInlineMath(child, source)) {
          children[i] = { type: "text", value: source.slice(child.position!.start.offset, child.position!.end.offset) };
        } else {
          walk(child);
        }
      }
    };
    walk(tree);
  };
}

/** A `math` node as mdast-util-math makes one for a `$$` block (its data tells remark-rehype the HTML). */
function displayMath(value: string, from: MdNode): MdNode {
  const code = {
    type: "element",
    tagName: "code",
    properties: { className: ["language-math", "math-display"] },
    children: [{ type: "text", value }],
  };
  return { type: "math", value, position: from.position, data: { hName: "pre", hChildren: [code] } };
}

function delimiterOf(node: MdNode, source: string): string {
  const start = node.position?.start.offset;
  if (start === undefined) return "";
  return source.startsWith("$$", start) ? "$$" : source[start] === "$" ? "$" : "";
}

function isLoneDisplayMath(paragraph: MdNode, source: string): boolean {
  const only = paragraph.children?.length === 1 ? paragraph.children[0]! : null;
  return only !== null && only.type === "inlineMath" && delimiterOf(only, source) === "$$";
}

function isProperInlineMath(node: MdNode, source: string): boolean {
  if (delimiterOf(node, source) !== "$") return true;
  const end = node.position?.end.offset;
  const value = node.value ?? "";
  if (value === "" || /^\s/.test(value) || /\s$/.test(value)) return false;
  return end === undefined || !/[0-9]/.test(source[end] ?? "");
}

export const remarkPlugins: Options["remarkPlugins"] = [remarkGfm, [remarkMath, { singleDollarTextMath: true }], mathGuards, htmlAsText];

export const rehypePlugins: Options["rehypePlugins"] = [
  // KaTeX: `trust` stays false, so \href{javascript:...} and friends are refused.
  [rehypeKatex, { throwOnError: false, strict: "ignore", output: "htmlAndMathml" }],
  // No auto-detection: guessing the language of every fence is slow and often wrong.
  rehypeHighlightCode,
];
