import { MoreHorizontal, Pencil, Trash2 } from "lucide-react";
import { memo, useEffect, useRef, useState, type ReactNode } from "react";
import type { Snippet } from "../../api/types";
import type { ConversationSummary } from "../../protocol.gen";
import { plainTitle } from "../../state/titles";
import { Menu } from "../ui/Menu";

/** A search match's snippet, the matched words marked (offsets from the server: no markup is ever read from text). */
function SnippetText({ snippet }: { snippet: Snippet }) {
  const parts: ReactNode[] = [];
  let at = 0;
  const marks = [...snippet.highlights].sort((a, b) => a.start - b.start);
  for (const [i, h] of marks.entries()) {
    if (h.start < at || h.end > snippet.text.length) continue;
    if (h.start > at) parts.push(snippet.text.slice(at, h.start));
    parts.push(<mark key={i}>{snippet.text.slice(h.start, h.end)}</mark>);
    at = h.end;
  }
  parts.push(snippet.text.slice(at));
  return <span className="conv-item__snippet">{parts}</span>;
}

export interface ConversationItemProps {
  conversation: ConversationSummary & { snippet?: Snippet | null };
  active: boolean;
  onOpen: (id: string) => void;
  onRename: (id: string, title: string) => void;
  onDelete: (conversation: ConversationSummary) => void;
}

/**
 * One row of the sidebar: opens on click; rename inline (F2 or the menu);
 * delete via the menu. One Tab stop per row (the link): its menu opens with
 * Shift+F10 or the context-menu key, and focus comes back to the link after
 * a rename or the menu.
 */
export const ConversationItem = memo(function ConversationItem({ conversation, active, onOpen, onRename, onDelete }: ConversationItemProps) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(conversation.title);
  const [menuToken, setMenuToken] = useState(0);
  const link = useRef<HTMLAnchorElement>(null);
  // Set when a rename ends by key (Enter, Escape): focus goes back to the row, not to the page.
  const refocus = useRef(false);
  // A rename moves the row to the top of the list, and moving a focused element drops its focus: once more then.
  const refocusOnTitle = useRef(false);
  useEffect(() => {
    if (!editing && refocus.current) {
      refocus.current = false;
      link.current?.focus();
    }
  }, [editing]);
  useEffect(() => {
    if (refocusOnTitle.current) {
      refocusOnTitle.current = false;
      link.current?.focus();
    }
  }, [conversation.title]);
  const title = plainTitle(conversation.title) || "New chat";

  const commit = () => {
    setEditing(false);
    const next = draft.trim();
    if (next && next !== conversation.title) {
      refocusOnTitle.current = refocus.current;
      onRename(conversation.id, next);
    }
  };

  if (editing) {
    return (
      <li className="conv-item conv-item--editing">
        <input
          className="conv-item__input"
          aria-label="Conversation title"
          autoFocus
          value={draft}
          maxLength={200}
          onChange={(e) => setDraft(e.target.value)}
          onFocus={(e) => e.currentTarget.select()}
          onBlur={commit}
          onKeyDown={(e) => {
            if (e.key === "Enter") {
              e.preventDefault();
              refocus.current = true;
              commit();
            } else if (e.key === "Escape") {
              e.preventDefault();
              e.stopPropagation();
              refocus.current = true;
              setEditing(false);
              setDraft(conversation.title);
            }
          }}
        />
      </li>
    );
  }

  return (
    <li className={`conv-item ${active ? "conv-item--active" : ""}`}>
      <a
        ref={link}
        className="conv-item__link"
        href={`/c/${conversation.id}`}
        aria-current={active ? "page" : undefined}
        title={title}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          onOpen(conversation.id);
        }}
        onKeyDown={(e) => {
          if (e.key === "F2") {
            e.preventDefault();
            setDraft(conversation.title);
            setEditing(true);
          } else if (e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey)) {
            e.preventDefault();
            setMenuToken((t) => t + 1);
          }
        }}
      >
        <span className="conv-item__title">{title}</span>
        {conversation.snippet ? <SnippetText snippet={conversation.snippet} /> : null}
      </a>
      <Menu
        label={`Options for ${title}`}
        trigger={<MoreHorizontal size={16} />}
        triggerClassName="conv-item__menu icon-btn icon-btn--sm"
        triggerTabIndex={-1}
        openToken={menuToken}
        focusOnClose={link}
        items={[
          {
            label: "Rename",
            icon: <Pencil size={16} />,
            onSelect: () => {
              setDraft(conversation.title);
              setEditing(true);
            },
          },
          { label: "Delete", icon: <Trash2 size={16} />, danger: true, onSelect: () => onDelete(conversation) },
        ]}
      />
    </li>
  );
});
