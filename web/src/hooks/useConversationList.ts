import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { SearchHit } from "../api/types";
import { api } from "../api/client";
import { useChatActions } from "../contexts/ChatContext";
import { useChatSelector } from "./useChatSelector";

export interface ConversationListView {
  items: SearchHit[];
  loading: boolean;
  error: boolean;
  hasMore: boolean;
  loadMore: () => void;
}

/**
 * The sidebar's conversations: the live list (kept current by events) when
 * the search box is empty, else the server's search results for `query`,
 * each paged by `next_cursor`.
 */
export function useConversationList(query: string, debounceMs = 250): ConversationListView {
  const list = useChatSelector((s) => s.list);
  const { loadList } = useChatActions();
  const q = query.trim();

  useEffect(() => {
    if (list.status === "idle") void loadList(null);
  }, [list.status, loadList]);

  const [results, setResults] = useState<{ q: string; items: SearchHit[]; next: string | null } | null>(null);
  const [searching, setSearching] = useState(false);
  const [searchError, setSearchError] = useState(false);
  const controller = useRef<AbortController | null>(null);

  const search = useCallback(async (term: string, cursor: string | null) => {
    controller.current?.abort();
    const c = new AbortController();
    controller.current = c;
    setSearching(true);
    setSearchError(false);
    try {
      const page = await api.listConversations({ q: term, cursor }, c.signal);
      setResults((prev) => ({
        q: term,
        items: cursor && prev?.q === term ? [...prev.items, ...page.items] : page.items,
        next: page.next_cursor,
      }));
    } catch {
      if (!c.signal.aborted) setSearchError(true);
    } finally {
      if (!c.signal.aborted) setSearching(false);
    }
  }, []);

  useEffect(() => {
    if (!q) {
      controller.current?.abort();
      setResults(null);
      setSearching(false);
      return;
    }
    const timer = setTimeout(() => void search(q, null), debounceMs);
    return () => clearTimeout(timer);
  }, [q, debounceMs, search]);

  // A conversation deleted while its search result is shown leaves the results too.
  const previous = useRef(list.byId);
  useEffect(() => {
    const gone = Object.keys(previous.current).filter((id) => !(id in list.byId));
    previous.current = list.byId;
    if (gone.length > 0) setResults((r) => (r ? { ...r, items: r.items.filter((i) => !gone.includes(i.id)) } : r));
  }, [list.byId]);

  const liveItems = useMemo(() => Object.values(list.byId), [list.byId]);

  if (q) {
    // Titles in results follow live renames and title events; the snippet stays.
    const items = (results?.q === q ? results.items : []).map((item) => ({ ...item, ...list.byId[item.id] }));
    return {
      items,
      loading: searching,
      error: searchError,
      hasMore: Boolean(results?.next),
      loadMore: () => {
        if (results?.next && !searching) void search(q, results.next);
      },
    };
  }
  return {
    items: liveItems,
    loading: list.status === "loading" || list.status === "idle",
    error: list.status === "error",
    hasMore: list.nextCursor !== null,
    loadMore: () => {
      if (list.nextCursor && list.status !== "loading") void loadList(list.nextCursor);
    },
  };
}
