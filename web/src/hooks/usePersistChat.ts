import { useEffect } from "react";
import { snapshotOf } from "../state/persist";
import { STORAGE_KEYS, safeSet } from "../net/session";
import type { ChatStore } from "../contexts/ChatContext";

/**
 * Keep the reload snapshot (last event id + replies in flight) in
 * sessionStorage: at most every `intervalMs`, and always when the page is
 * hidden or unloaded. Both halves come from one state, so they always agree.
 * Subscribes to the store directly: writing a snapshot renders nothing.
 */
export function usePersistChat(store: ChatStore, intervalMs = 250): void {
  useEffect(() => {
    let written = "";
    let timer: ReturnType<typeof setTimeout> | null = null;
    const write = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      const json = JSON.stringify(snapshotOf(store.getState()));
      if (json !== written) {
        safeSet(sessionStorage, STORAGE_KEYS.chat, json);
        written = json;
      }
    };
    let seen = store.getState();
    const unsubscribe = store.subscribe(() => {
      const state = store.getState();
      const changed = state.lastEventId !== seen.lastEventId || state.turns !== seen.turns;
      seen = state;
      if (changed && timer === null) timer = setTimeout(write, intervalMs);
    });
    window.addEventListener("pagehide", write);
    document.addEventListener("visibilitychange", write);
    return () => {
      unsubscribe();
      window.removeEventListener("pagehide", write);
      document.removeEventListener("visibilitychange", write);
      // No final write on unmount: that is log-out, which has just cleared the tab's storage.
      if (timer !== null) clearTimeout(timer);
    };
  }, [store, intervalMs]);
}
