import { FileUp, Keyboard, KeyRound, Library, LogOut, PanelLeftClose, Search, Shield, SquarePen, Waves, X } from "lucide-react";
import { useCallback, useRef, useState } from "react";
import { useAuth } from "../../contexts/AuthContext";
import { useChatActions } from "../../contexts/ChatContext";
import { useToast } from "../../contexts/ToastContext";
import { useChatSelector } from "../../hooks/useChatSelector";
import { useConversationList } from "../../hooks/useConversationList";
import type { ConversationSummary } from "../../protocol.gen";
import { plainTitle } from "../../state/titles";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { IconButton } from "../ui/IconButton";
import { Menu } from "../ui/Menu";
import { AccountDialog } from "./AccountDialog";
import { ConversationList } from "./ConversationList";
import { ThemeToggle } from "./ThemeToggle";
import "./sidebar.css";

export interface SidebarProps {
  /** Phone layout: the sidebar is a drawer and this closes it. */
  isDrawer: boolean;
  onClose: () => void;
  /** Open the keyboard shortcuts dialog. */
  onShowShortcuts?: () => void;
}

export function Sidebar({ isDrawer, onClose, onShowShortcuts }: SidebarProps) {
  const { user, logout } = useAuth();
  const activeId = useChatSelector((s) => s.activeId);
  const actions = useChatActions();
  const { toast } = useToast();
  const [query, setQuery] = useState("");
  const [toDelete, setToDelete] = useState<ConversationSummary | null>(null);
  const [accountOpen, setAccountOpen] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const list = useConversationList(query);

  const open = useCallback(
    (id: string | null) => {
      actions.open(id);
      if (isDrawer) onClose();
    },
    [actions, isDrawer, onClose],
  );
  const rename = useCallback((id: string, title: string) => void actions.rename(id, title), [actions]);

  return (
    <aside
      className="sidebar"
      aria-label="Sidebar"
      onKeyDown={(e) => {
        if (e.key === "Escape" && isDrawer && !e.defaultPrevented) onClose();
      }}
    >
      <div className="sidebar__top">
        <div className="sidebar__brand">
          <Waves size={20} aria-hidden className="sidebar__logo" />
          <span>tidechat</span>
        </div>
        <IconButton label={isDrawer ? "Close sidebar" : "Collapse sidebar"} onClick={onClose}>
          {isDrawer ? <X size={20} /> : <PanelLeftClose size={20} />}
        </IconButton>
      </div>
      <button type="button" className="sidebar__new" onClick={() => open(null)}>
        <SquarePen size={18} aria-hidden />
        New chat
      </button>
      <div className="sidebar__search" role="search">
        <Search size={16} aria-hidden />
        <input
          type="search"
          aria-label="Search conversations"
          placeholder="Search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Escape" && query) {
              e.preventDefault();
              setQuery("");
            }
          }}
        />
      </div>
      <ConversationList
        items={list.items}
        activeId={activeId}
        loading={list.loading}
        error={list.error}
        hasMore={list.hasMore}
        searching={query.trim() !== ""}
        onLoadMore={list.loadMore}
        onOpen={open}
        onRename={rename}
        onDelete={setToDelete}
      />
      <div className="sidebar__footer">
        <Menu
          label={user ? `${user.username}, account` : "Account"}
          align="start"
          triggerClassName="sidebar__user"
          trigger={
            <>
              {/* The initial is drawn by CSS (attr()), so the button's visible text is just the name it is called by. */}
              <span className="sidebar__avatar" aria-hidden data-initial={(user?.username ?? "?").slice(0, 1).toUpperCase()} />
              <span className="sidebar__username">{user?.username}</span>
            </>
          }
          items={[
            { label: "Account and sign-ins", icon: <KeyRound size={16} />, onSelect: () => setAccountOpen(true) },
            { label: "Knowledge", icon: <Library size={16} />, onSelect: () => window.location.assign("/knowledge") },
            ...(user?.is_admin ? [{ label: "Admin console", icon: <Shield size={16} />, onSelect: () => window.location.assign("/admin") }] : []),
            { label: "Import conversation (JSON)", icon: <FileUp size={16} />, onSelect: () => fileInput.current?.click() },
            ...(onShowShortcuts ? [{ label: "Keyboard shortcuts", icon: <Keyboard size={16} />, onSelect: onShowShortcuts }] : []),
            { label: "Log out", icon: <LogOut size={16} />, onSelect: () => void logout() },
          ]}
        />
        <ThemeToggle />
        <input
          ref={fileInput}
          type="file"
          accept="application/json,.json"
          hidden
          aria-label="Conversation export to import"
          onChange={async (e) => {
            const file = e.target.files?.[0];
            e.target.value = "";
            if (!file) return;
            let data: unknown;
            try {
              data = JSON.parse(await file.text());
            } catch {
              toast("That file isn't a JSON export.");
              return;
            }
            await actions.importExport(data);
            if (isDrawer) onClose();
          }}
        />
      </div>
      <AccountDialog open={accountOpen} onClose={() => setAccountOpen(false)} />
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete conversation?"
        message={`"${plainTitle(toDelete?.title ?? "") || "New chat"}" and all its messages will be deleted. This can't be undone.`}
        confirmLabel="Delete"
        danger
        onCancel={() => setToDelete(null)}
        onConfirm={() => {
          if (toDelete) void actions.remove(toDelete.id);
          setToDelete(null);
        }}
      />
    </aside>
  );
}
