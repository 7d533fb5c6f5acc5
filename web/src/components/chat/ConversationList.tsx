import { useEffect, useMemo, useRef } from "react";
import type { SearchHit } from "../../api/types";
import { useNow } from "../../hooks/useNow";
import type { ConversationSummary } from "../../protocol.gen";
import { groupByDate } from "../../state/dateGroups";
import { Spinner } from "../ui/Spinner";
import { ConversationItem } from "./ConversationItem";

export interface ConversationListProps {
  items: SearchHit[];
  activeId: string | null;
  loading: boolean;
  error: boolean;
  hasMore: boolean;
  searching: boolean;
  onLoadMore: () => void;
  onOpen: (id: string) => void;
  onRename: (id: string, title: string) => void;
  onDelete: (conversation: ConversationSummary) => void;
}

/** Conversations newest first under Today / Yesterday / Previous 7 days / Older; more load at the end. */
export function ConversationList(props: ConversationListProps) {
  const { items, activeId, loading, error, hasMore, searching, onLoadMore } = props;
  const now = useNow(60_000);
  const groups = useMemo(() => groupByDate(items, new Date(now)), [items, now]);
  const sentinel = useRef<HTMLDivElement>(null);
  const loadMore = useRef(onLoadMore);
  loadMore.current = onLoadMore;

  // Observed anew when a load ends too: the end marker is not rendered while
  // the list loads, so after a reload of as many items (a reconnect's
  // refresh) the observer watched a removed node and scrolling to the end
  // loaded nothing more.
  useEffect(() => {
    const el = sentinel.current;
    if (!el || !hasMore || loading || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadMore.current();
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, [hasMore, items.length, loading]);

  return (
    <nav className="conv-list" aria-label={searching ? "Search results" : "Conversations"}>
      {groups.map((group) => (
        <section key={group.label} className="conv-group" aria-label={group.label}>
          <h2 className="conv-group__label">{group.label}</h2>
          <ul className="conv-group__items">
            {group.items.map((c) => (
              <ConversationItem
                key={c.id}
                conversation={c}
                active={c.id === activeId}
                onOpen={props.onOpen}
                onRename={props.onRename}
                onDelete={props.onDelete}
              />
            ))}
          </ul>
        </section>
      ))}
      {!loading && !error && items.length === 0 && (
        <p className="conv-list__empty">{searching ? "No conversations match." : "No conversations yet."}</p>
      )}
      {error && (
        <p className="conv-list__empty">
          Couldn't load conversations.{" "}
          <button type="button" className="link-button" onClick={onLoadMore}>
            Try again
          </button>
        </p>
      )}
      {loading && (
        <div className="conv-list__loading">
          <Spinner label="Loading conversations" />
        </div>
      )}
      {hasMore && !loading && (
        <div ref={sentinel} className="conv-list__more">
          <button type="button" className="link-button" onClick={onLoadMore}>
            Load more
          </button>
        </div>
      )}
    </nav>
  );
}
