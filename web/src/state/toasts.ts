/** Transient notices at the bottom of the screen: their own small state, apart from chat state. */
export interface Toast {
  id: number;
  kind: "error" | "info";
  message: string;
}

export interface ToastState {
  toasts: Toast[];
  nextId: number;
}

export type ToastAction = { type: "add"; kind: Toast["kind"]; message: string } | { type: "dismiss"; id: number };

/** A burst of failures should not bury the screen: keep the newest few. */
export const MAX_TOASTS = 4;

export function reduceToasts(state: ToastState, action: ToastAction): ToastState {
  switch (action.type) {
    case "add": {
      const toast = { id: state.nextId, kind: action.kind, message: action.message };
      return { toasts: [...state.toasts.slice(-(MAX_TOASTS - 1)), toast], nextId: state.nextId + 1 };
    }
    case "dismiss":
      return { ...state, toasts: state.toasts.filter((t) => t.id !== action.id) };
  }
}
