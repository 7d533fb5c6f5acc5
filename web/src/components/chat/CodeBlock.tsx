import { Check, Copy } from "lucide-react";
import { isValidElement, useRef, type ReactNode } from "react";
import { useCopyToClipboard } from "../../hooks/useCopyToClipboard";
import "./markdown.css";

function languageOf(children: ReactNode): string | null {
  if (!isValidElement<{ className?: string }>(children)) return null;
  const match = /language-([\w+#.-]+)/.exec(children.props.className ?? "");
  return match ? match[1]! : null;
}

/** A fenced code block: language label and a copy button over the highlighted code. */
export function CodeBlock({ children }: { children?: ReactNode }) {
  const pre = useRef<HTMLPreElement>(null);
  const [copied, copy] = useCopyToClipboard();
  const language = languageOf(children);
  return (
    <div className="codeblock">
      <div className="codeblock__bar">
        <span className="codeblock__lang">{language ?? "text"}</span>
        <button
          type="button"
          className="codeblock__copy"
          onClick={() => void copy(pre.current?.textContent ?? "")}
          aria-label={copied ? "Copied" : `Copy ${language ?? ""} code`.replace("  ", " ")}
        >
          {copied ? <Check size={14} aria-hidden /> : <Copy size={14} aria-hidden />}
          <span>{copied ? "Copied" : "Copy"}</span>
        </button>
      </div>
      {/* Long lines scroll sideways: the scroller takes focus, so a keyboard can scroll it too. */}
      <pre ref={pre} tabIndex={0}>
        {children}
      </pre>
    </div>
  );
}
