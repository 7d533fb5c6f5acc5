import { X } from "lucide-react";
import { useEffect } from "react";
import { IconButton } from "./IconButton";
import "./ui.css";

export interface ToastView {
  id: number;
  kind: "error" | "info";
  message: string;
}

/** Transient notices, bottom centre; each leaves by itself after a while or when dismissed. */
export function ToastList({ toasts, onDismiss, timeoutMs = 7000 }: { toasts: ToastView[]; onDismiss: (id: number) => void; timeoutMs?: number }) {
  useEffect(() => {
    if (toasts.length === 0) return;
    const oldest = toasts[0]!;
    const timer = setTimeout(() => onDismiss(oldest.id), timeoutMs);
    return () => clearTimeout(timer);
  }, [toasts, onDismiss, timeoutMs]);

  return (
    <div className="toasts" role="region" aria-label="Notifications">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast--${t.kind}`} role={t.kind === "error" ? "alert" : "status"}>
          <span>{t.message}</span>
          <IconButton label="Dismiss" size="sm" onClick={() => onDismiss(t.id)}>
            <X size={14} />
          </IconButton>
        </div>
      ))}
    </div>
  );
}
