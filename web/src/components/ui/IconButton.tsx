import type { ButtonHTMLAttributes, ReactNode, Ref } from "react";
import "./ui.css";

export interface IconButtonProps extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, "children"> {
  /** Read by screen readers and shown as a tooltip: an icon alone says nothing to them. */
  label: string;
  children: ReactNode;
  size?: "sm" | "md";
  ref?: Ref<HTMLButtonElement>;
}

export function IconButton({ label, size = "md", className, type = "button", children, ...rest }: IconButtonProps) {
  return (
    <button type={type} aria-label={label} title={label} className={`icon-btn icon-btn--${size} ${className ?? ""}`} {...rest}>
      {children}
    </button>
  );
}
