import { useSyncExternalStore } from "react";
import { useChatStore } from "../contexts/ChatContext";
import type { ChatState } from "../state/types";

/**
 * A slice of the chat state; the component re-renders only when the slice
 * changes (compared with Object.is). The selector must return something
 * already in the state (or a primitive), not a new object or array on every
 * call: derive those with useMemo from the slices.
 */
export function useChatSelector<T>(selector: (state: ChatState) => T): T {
  const store = useChatStore();
  return useSyncExternalStore(store.subscribe, () => selector(store.getState()));
}
