import { useVirtualizer } from "@tanstack/react-virtual";
import { ArrowDown } from "lucide-react";
import { useCallback, useEffect, useLayoutEffect, useRef } from "react";
import { useAutoScroll } from "../../hooks/useAutoScroll";
import type { Row } from "../../state/selectors";
import { siblingsOf } from "../../state/tree";
import type { ChatConversation } from "../../state/types";
import { Message } from "./Message";
import { PendingMessage } from "./PendingMessage";
import { TypingIndicator } from "./TypingIndicator";
import "./message-list.css";

export interface MessageListProps {
  conversation: ChatConversation | undefined;
  rows: Row[];
  busy: boolean;
  online: boolean;
  /** Changes when the user sends: the list jumps to the bottom and follows again. */
  followToken: number;
  /** Older messages of the branch are not loaded yet (a long conversation opens at its tail). */
  hasOlder?: boolean;
  /** Fetch them: called when the list is scrolled near its top. */
  onReachTop?: () => Promise<void>;
}

/** How close to the top (px) the next older page is fetched: before the user gets there. */
const LOAD_OLDER_AT = 600;

function estimate(row: Row | undefined): number {
  if (!row) return 120;
  if (row.kind === "typing") return 56;
  if (row.kind === "pending") return 72;
  return row.message.role === "user" ? 72 : 220;
}

/**
 * The conversation, virtualized: only rows near the viewport are in the DOM,
 * so a 2,000-message conversation opens at once and Markdown off screen is
 * never rendered. Keyed by conversation, so each opens fresh at its bottom.
 * A feed (ARIA) of articles; the status line in ChatView
 * speaks for it, so streamed tokens are not read out one by one.
 */
export function MessageList({ conversation, rows, busy, online, followToken, hasOlder = false, onReachTop }: MessageListProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const contentRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => estimate(rows[i]),
    getItemKey: (i) => rows[i]?.key ?? i,
    overscan: 4,
    paddingStart: 16,
    paddingEnd: 24,
    // Open at the bottom: the first render already shows the newest messages, not the oldest.
    initialOffset: () => rows.reduce((sum, row) => sum + estimate(row), 0),
  });
  const lastIndex = rows.length - 1;
  const { atBottom, stickToBottom } = useAutoScroll(scrollRef, contentRef, () => {
    if (lastIndex >= 0) virtualizer.scrollToIndex(lastIndex, { align: "end" });
  });

  // On opening (the list is keyed by conversation) and after sending: go to the newest message.
  useLayoutEffect(() => {
    stickToBottom();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [followToken]);

  // Rows measured after the first paint can leave us short of the end; settle once more.
  useEffect(() => {
    const id = requestAnimationFrame(() => {
      if (atBottom && scrollRef.current) scrollRef.current.scrollTop = scrollRef.current.scrollHeight;
    });
    return () => cancelAnimationFrame(id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [rows.length]);

  // Scrolled near the top with older messages to fetch: fetch them, and keep
  // what is on screen where it is once they are put above it.
  const loadingOlder = useRef(false);
  const anchor = useRef<{ firstKey: string | number; total: number; top: number } | null>(null);
  const maybeLoadOlder = useCallback(() => {
    const el = scrollRef.current;
    if (!el || !hasOlder || !onReachTop || loadingOlder.current || el.scrollTop > LOAD_OLDER_AT) return;
    loadingOlder.current = true;
    anchor.current = { firstKey: rows[0]?.key ?? "", total: virtualizer.getTotalSize(), top: el.scrollTop };
    void onReachTop().finally(() => {
      loadingOlder.current = false;
    });
  }, [hasOlder, onReachTop, rows, virtualizer]);
  useEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    el.addEventListener("scroll", maybeLoadOlder, { passive: true });
    return () => el.removeEventListener("scroll", maybeLoadOlder);
  }, [maybeLoadOlder]);
  useLayoutEffect(() => {
    const saved = anchor.current;
    const el = scrollRef.current;
    if (saved && el && rows[0]?.key !== saved.firstKey) {
      el.scrollTop = saved.top + (virtualizer.getTotalSize() - saved.total);
      anchor.current = null;
    }
    // A short page may not fill the screen: nothing to scroll, so look now.
    const id = requestAnimationFrame(maybeLoadOlder);
    return () => cancelAnimationFrame(id);
  }, [rows, virtualizer, maybeLoadOlder]);

  const items = virtualizer.getVirtualItems();
  return (
    <div className="message-list">
      <div
        ref={scrollRef}
        className="message-list__scroll"
        role="feed"
        aria-label="Messages"
        aria-busy={busy}
        tabIndex={0}
      >
        <div ref={contentRef} className="message-list__content" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((item) => {
            const row = rows[item.index]!;
            return (
              <div
                key={item.key}
                data-index={item.index}
                ref={virtualizer.measureElement}
                className={`message-list__row ${item.index === lastIndex ? "msg--last" : ""}`}
                style={{ transform: `translateY(${item.start}px)` }}
              >
                {row.kind === "message" && conversation ? (
                  <Message
                    conversationId={conversation.id}
                    message={row.message}
                    siblings={siblingsOf(conversation, row.message)}
                    busy={busy}
                    position={item.index + 1}
                    setSize={rows.length}
                  />
                ) : row.kind === "pending" ? (
                  <PendingMessage pending={row.pending} online={online} position={item.index + 1} setSize={rows.length} />
                ) : (
                  <article className="msg msg--assistant" aria-label="Assistant is replying" aria-posinset={item.index + 1} aria-setsize={rows.length}>
                    <div className="msg__inner">
                      <TypingIndicator />
                    </div>
                  </article>
                )}
              </div>
            );
          })}
        </div>
      </div>
      {!atBottom && (
        <button type="button" className="jump-latest" onClick={() => stickToBottom("smooth")} aria-label="Jump to latest message">
          <ArrowDown size={18} aria-hidden />
        </button>
      )}
    </div>
  );
}
