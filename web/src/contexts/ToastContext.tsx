/**
 * Toasts have a context of their own: anything may raise one, and only the
 * toast list re-renders when one comes or goes. Two contexts, so a component
 * that only raises toasts never re-renders because of them.
 */
import { useMemo, useReducer, type ReactNode } from "react";
import { reduceToasts, type Toast } from "../state/toasts";
import { createStrictContext } from "./strictContext";

export interface ToastActions {
  toast: (message: string, kind?: Toast["kind"]) => void;
  dismiss: (id: number) => void;
}

const [ToastActionsContext, useToast] = createStrictContext<ToastActions>("ToastActions");
const [ToastListContext, useToastList] = createStrictContext<Toast[]>("ToastList");
export { useToast, useToastList };

export function ToastProvider({ children }: { children: ReactNode }) {
  const [state, dispatch] = useReducer(reduceToasts, { toasts: [], nextId: 1 });
  const actions = useMemo<ToastActions>(
    () => ({
      toast: (message, kind = "error") => dispatch({ type: "add", kind, message }),
      dismiss: (id) => dispatch({ type: "dismiss", id }),
    }),
    [],
  );
  return (
    <ToastActionsContext.Provider value={actions}>
      <ToastListContext.Provider value={state.toasts}>{children}</ToastListContext.Provider>
    </ToastActionsContext.Provider>
  );
}
