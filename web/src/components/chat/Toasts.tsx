import { useToast, useToastList } from "../../contexts/ToastContext";
import { ToastList } from "../ui/ToastList";

/** The toast list, on its own context: a toast coming or going re-renders this alone. */
export function Toasts() {
  const toasts = useToastList();
  const { dismiss } = useToast();
  return <ToastList toasts={toasts} onDismiss={dismiss} />;
}
