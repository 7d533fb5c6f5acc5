import { useEffect, useRef } from "react";
import { snapshotOf } from "../state/persist";
import { STORAGE_KEYS, safeSet } from "../net/session";
import type { ChatState } from "../state/types";

/**
 * Keep the reload snapshot (last event id + replies in flight) in
 * sessionStorage: at most every `intervalMs`, and always when the page is
 * hidden or unloaded. Both halves come from one state, so they always agree.
 */
export function usePersistChat(state: ChatState, intervalMs = 250): void {
  const latest = useRef(state);
  latest.current = state;
  const written = useRef("");
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const write = useRef(() => {
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = null;
    const json = JSON.stringify(snapshotOf(latest.current));
    if (json !== written.current) {
      safeSet(sessionStorage, STORAGE_KEYS.chat, json);
      written.current = json;
    }
  });

  useEffect(() => {
    const flush = write.current;
    window.addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", flush);
    return () => {
      window.removeEventListener("pagehide", flush);
      document.removeEventListener("visibilitychange", flush);
      // No final write on unmount: that is log-out, which has just cleared the tab's storage.
      if (timer.current !== null) clearTimeout(timer.current);
    };
  }, []);

  useEffect(() => {
    if (timer.current === null) timer.current = setTimeout(write.current, intervalMs);
  }, [state.lastEventId, state.turns, intervalMs]);
}
