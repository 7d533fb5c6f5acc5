import { useId, useState } from "react";

/** Past this many characters or lines a message opens collapsed. */
const LONG_CHARS = 2_500;
const LONG_LINES = 40;

export function isLongText(text: string): boolean {
  if (text.length > LONG_CHARS) return true;
  let lines = 1;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) if (++lines > LONG_LINES) return true;
  return false;
}

/**
 * Plain text (a question as typed) that a very long paste does not turn into
 * a bubble thousands of pixels tall: it opens collapsed with "Show more".
 */
export function CollapsibleText({ text, className }: { text: string; className: string }) {
  const long = isLongText(text);
  const [expanded, setExpanded] = useState(false);
  const id = useId();
  if (!long) return <div className={className}>{text}</div>;
  return (
    <div className={`${className} collapsible ${expanded ? "collapsible--open" : ""}`}>
      <div id={id} className="collapsible__text">
        {text}
      </div>
      <button type="button" className="collapsible__toggle link-button" aria-expanded={expanded} aria-controls={id} onClick={() => setExpanded((e) => !e)}>
        {expanded ? "Show less" : "Show more"}
      </button>
    </div>
  );
}
