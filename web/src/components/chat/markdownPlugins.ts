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
}

/** remark plugin: `html` nodes become `text` nodes, so `<img onerror=...>` shows as those characters. */
export function htmlAsText() {
  const walk = (node: MdNode): void => {
    if (node.type === "html") node.type = "text";
    node.children?.forEach(walk);
  };
  return (tree: MdNode) => walk(tree);
}

export const remarkPlugins: Options["remarkPlugins"] = [remarkGfm, [remarkMath, { singleDollarTextMath: true }], htmlAsText];

export const rehypePlugins: Options["rehypePlugins"] = [
  // KaTeX: `trust` stays false, so \href{javascript:...} and friends are refused.
  [rehypeKatex, { throwOnError: false, strict: "ignore", output: "htmlAndMathml" }],
  // No auto-detection: guessing the language of every fence is slow and often wrong.
  rehypeHighlightCode,
];
