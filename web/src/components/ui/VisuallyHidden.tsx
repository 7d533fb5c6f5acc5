import type { ReactNode } from "react";
import "./ui.css";

/** Text for screen readers only. */
export function VisuallyHidden({ children, ...rest }: { children: ReactNode } & Record<string, unknown>) {
  return (
    <span className="visually-hidden" {...rest}>
      {children}
    </span>
  );
}
