import { useLayoutEffect, useRef, type Ref, type TextareaHTMLAttributes } from "react";
import "./ui.css";

export interface TextAreaProps extends TextareaHTMLAttributes<HTMLTextAreaElement> {
  /** Grow with the text up to this many pixels, then scroll. */
  maxHeight?: number;
  /** Never shorter than this many pixels (an editor that invites more than one line). */
  minHeight?: number;
  ref?: Ref<HTMLTextAreaElement>;
}

/** A textarea that grows with its content. */
export function TextArea({ maxHeight = 240, minHeight = 0, className, value, ref, ...rest }: TextAreaProps) {
  const inner = useRef<HTMLTextAreaElement | null>(null);

  useLayoutEffect(() => {
    const el = inner.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.max(minHeight, Math.min(el.scrollHeight, maxHeight))}px`;
    el.style.overflowY = el.scrollHeight > maxHeight ? "auto" : "hidden";
  }, [value, maxHeight, minHeight]);

  return (
    <textarea
      ref={(el) => {
        inner.current = el;
        if (typeof ref === "function") ref(el);
        else if (ref) ref.current = el;
      }}
      className={`textarea ${className ?? ""}`}
      value={value}
      {...rest}
    />
  );
}
