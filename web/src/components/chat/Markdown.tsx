import { memo, type ComponentProps } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import { CodeBlock } from "./CodeBlock";
import { rehypePlugins, remarkPlugins } from "./markdownPlugins";
import "katex/dist/katex.min.css";
import "./markdown.css";

function Link({ href, children }: ComponentProps<"a">) {
  // The URL filter emptied it (javascript: and the like): show the text, link nothing.
  if (!href) return <span className="md-dead-link">{children}</span>;
  return (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

/** Images are not loaded (a reply could use one to send data to any server): shown as a link instead. */
function Image({ src, alt }: ComponentProps<"img">) {
  const label = alt ? `Image: ${alt}` : "Image";
  if (!src || typeof src !== "string") return <span className="md-dead-link">{label}</span>;
  return (
    <a href={src} target="_blank" rel="noopener noreferrer">
      {label}
    </a>
  );
}

/** Wide tables scroll sideways: the scroller takes focus, so a keyboard can scroll it too. */
function Table(props: ComponentProps<"table">) {
  return (
    <div className="md-table" tabIndex={0} role="group" aria-label="Table">
      <table {...props} />
    </div>
  );
}

/** GFM task-list boxes are read-only marks: named for what they say. */
function Input({ type, checked }: ComponentProps<"input">) {
  if (type !== "checkbox") return null;
  return <input type="checkbox" checked={Boolean(checked)} readOnly disabled aria-label={checked ? "Done" : "Not done"} />;
}

const components: Components = {
  a: Link,
  img: Image,
  pre: ({ children }) => <CodeBlock>{children}</CodeBlock>,
  table: Table,
  input: Input,
};

/** A message's Markdown: GFM, math, highlighted code, and never raw HTML. */
export const Markdown = memo(function Markdown({ content }: { content: string }) {
  return (
    <div className="md">
      <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components}>
        {content}
      </ReactMarkdown>
    </div>
  );
});
