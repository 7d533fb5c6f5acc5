import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { api, ApiError } from "../api/client";
import type { ChatStore } from "../contexts/ChatContext";
import { errorMessage } from "../api/errorMessage";
import { useRoute } from "./useRoute";

export interface ActiveConversation {
  /** The conversation on screen (null: a new chat). */
  activeId: string | null;
  /** The open conversation is being fetched over HTTP. */
  loadingActive: boolean;
  /** Its load failed (server away, network): what to say; `reload` tries again. */
  loadError: string | null;
  /** The first load is in (or there was none to do): the socket may connect and resume. */
  ready: boolean;
  /** Fetch the open conversation again (after a reconnect: events may have been missed). */
  reload: () => void;
  navigate: (id: string | null, opts?: { replace?: boolean }) => void;
}

/**
 * The conversation on screen: kept in step with the address bar both ways
 * (links, back/forward; a new chat getting its id, a deletion), and fetched
 * over HTTP when all the state has is a stub.
 */
export function useActiveConversation(
  store: ChatStore,
  { toast, onUnauthorized }: { toast: (message: string) => void; onUnauthorized: () => void },
): ActiveConversation {
  const activeId = useSyncExternalStore(store.subscribe, () => store.getState().activeId);
  const [routeId, navigate] = useRoute();
  const [loadingActive, setLoadingActive] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  // The socket waits for the first HTTP load, so a resume after a reload lands on the loaded conversation.
  const [ready, setReady] = useState(activeId === null);
  const [reloadToken, setReloadToken] = useState(0);

  useEffect(() => store.dispatch({ type: "select", conversationId: routeId }), [store, routeId]);
  const routeRef = useRef(routeId);
  routeRef.current = routeId;
  useEffect(() => {
    if (activeId !== routeRef.current) navigate(activeId, { replace: routeRef.current === null });
  }, [activeId, navigate]);

  const callbacks = useRef({ toast, onUnauthorized });
  callbacks.current = { toast, onUnauthorized };

  useEffect(() => {
    if (activeId === null) return;
    const known = store.getState().conversations[activeId];
    if (known?.loaded && reloadToken === 0) {
      setReady(true);
      return;
    }
    const controller = new AbortController();
    setLoadingActive(!known?.loaded);
    setLoadError(null);
    api
      .getConversation(activeId, controller.signal)
      .then((view) => store.dispatch({ type: "conversation_loaded", conversation: view }))
      .catch((exc: unknown) => {
        if (controller.signal.aborted) return;
        if (exc instanceof ApiError && exc.status === 404) {
          callbacks.current.toast("That conversation doesn't exist or was deleted.");
          navigate(null, { replace: true });
        } else if (exc instanceof ApiError && exc.status === 401) {
          callbacks.current.onUnauthorized();
        } else if (!store.getState().conversations[activeId]?.loaded) {
          // Nothing to show: say so where the conversation would be, not as an empty chat.
          setLoadError(errorMessage(exc));
        } else {
          callbacks.current.toast(errorMessage(exc));
        }
      })
      .finally(() => {
        if (controller.signal.aborted) return;
        setLoadingActive(false);
        setReady(true);
      });
    return () => controller.abort();
  }, [store, activeId, reloadToken, navigate]);

  const reload = useCallback(() => setReloadToken((t) => t + 1), []);
  return { activeId, loadingActive, loadError: activeId === null ? null : loadError, ready, reload, navigate };
}
