/**
 * Syntax highlighting of fenced code with lowlight (highlight.js).
 *
 * rehype-highlight would do the same, but it registers every language again
 * each time a processor is made, and react-markdown makes one per render:
 * ~40 ms per message, on every streamed chunk. Here the registry is built once.
 */
import type { Element, Root } from "hast";
import { toText } from "hast-util-to-text";
import { common, createLowlight } from "lowlight";
import { visit } from "unist-util-visit";

const lowlight = createLowlight(common);

function languageOf(node: Element): string | null {
  const classes = node.properties.className;
  if (!Array.isArray(classes)) return null;
  for (const c of classes) {
    const name = String(c);
    if (name.startsWith("language-")) return name.slice("language-".length);
    if (name.startsWith("lang-")) return name.slice("lang-".length);
  }
  return null;
}

/** rehype plugin: highlight `<pre><code class="language-x">` when x is a known language; no guessing. */
export function rehypeHighlightCode() {
  return (tree: Root) => {
    visit(tree, "element", (node, _index, parent) => {
      if (node.tagName !== "code" || parent?.type !== "element" || parent.tagName !== "pre") return;
      const language = languageOf(node);
      const classes = Array.isArray(node.properties.className) ? node.properties.className : [];
      node.properties.className = [...classes, "hljs"];
      if (!language || !lowlight.registered(language)) return;
      try {
        const result = lowlight.highlight(language, toText(node, { whitespace: "pre" }));
        node.children = result.children as Element["children"];
      } catch {
        // A grammar that chokes on odd input: leave the code plain.
      }
    });
  };
}
