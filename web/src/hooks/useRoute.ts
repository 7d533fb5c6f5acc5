import { useCallback, useEffect, useState } from "react";

/** `/` is a new chat, `/c/<id>` a conversation. The gateway serves index.html for both. */
export function conversationIdFromPath(pathname: string): string | null {
  const match = /^\/c\/([A-Za-z0-9_-]{1,64})\/?$/.exec(pathname);
  return match ? match[1]! : null;
}

export function pathFor(conversationId: string | null): string {
  return conversationId === null ? "/" : `/c/${conversationId}`;
}

/** The conversation id in the address bar, and a way to change it (history API, no router needed). */
export function useRoute(): [string | null, (id: string | null, opts?: { replace?: boolean }) => void] {
  const [id, setId] = useState(() => conversationIdFromPath(window.location.pathname));

  useEffect(() => {
    const onPop = () => setId(conversationIdFromPath(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const navigate = useCallback((next: string | null, opts: { replace?: boolean } = {}) => {
    const path = pathFor(next);
    if (window.location.pathname !== path) {
      if (opts.replace) window.history.replaceState(null, "", path);
      else window.history.pushState(null, "", path);
    }
    setId(next);
  }, []);

  return [id, navigate];
}
