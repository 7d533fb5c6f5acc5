import { Braces, FileText, Library, MoreHorizontal, PanelLeftOpen, ScrollText, SquarePen, Trash2 } from "lucide-react";
import { memo, useState } from "react";
import { api } from "../../api/client";
import { useChatActions } from "../../contexts/ChatContext";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { IconButton } from "../ui/IconButton";
import { Menu, type MenuItem } from "../ui/Menu";
import { AttachedChip, CollectionsDialog, useAttachedCollections } from "./CollectionsDialog";
import { ConnectionStatus } from "./ConnectionStatus";
import { ModelSelect } from "./ModelSelect";
import { SystemPromptEditor } from "./SystemPromptEditor";
import "./header.css";

/** Only what the header shows, so it stays as it is while a reply streams. */
export interface ChatHeaderProps {
  /** null: a new chat. */
  conversationId: string | null;
  title: string;
  /** The conversation's system prompt (or the one waiting for a new chat's first message). */
  systemPrompt: string;
  onSystemPromptChange: (prompt: string) => void;
  model: string | null;
  onModelChange: (id: string) => void;
  sidebarHidden: boolean;
  onOpenSidebar: () => void;
}

/** Start a download of the export (the server names the file with Content-Disposition). */
function download(url: string): void {
  const a = document.createElement("a");
  a.href = url;
  a.download = "";
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
}

export const ChatHeader = memo(function ChatHeader({ conversationId: id, title, systemPrompt, onSystemPromptChange, model, onModelChange, sidebarHidden, onOpenSidebar }: ChatHeaderProps) {
  const actions = useChatActions();
  const [promptOpen, setPromptOpen] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [knowledgeOpen, setKnowledgeOpen] = useState(false);
  const knowledge = useAttachedCollections(id);

  const items: MenuItem[] = [{ label: "System prompt", icon: <ScrollText size={16} />, onSelect: () => setPromptOpen(true) }];
  if (id) {
    items.push(
      { label: "Knowledge collections", icon: <Library size={16} />, onSelect: () => setKnowledgeOpen(true) },
      { label: "Export as Markdown", icon: <FileText size={16} />, onSelect: () => download(api.exportUrl(id, "markdown")) },
      { label: "Export as JSON", icon: <Braces size={16} />, onSelect: () => download(api.exportUrl(id, "json")) },
      { label: "Delete", icon: <Trash2 size={16} />, danger: true, onSelect: () => setConfirmDelete(true) },
    );
  }

  return (
    <header className="chat-header">
      <div className="chat-header__start">
        {sidebarHidden && (
          <>
            <IconButton label="Open sidebar" onClick={onOpenSidebar}>
              <PanelLeftOpen size={20} />
            </IconButton>
            <IconButton label="New chat" onClick={() => actions.open(null)} className="chat-header__new">
              <SquarePen size={20} />
            </IconButton>
          </>
        )}
        <ModelSelect models={actions.models} value={model} onChange={onModelChange} />
        {systemPrompt.trim() !== "" && (
          <button type="button" className="prompt-chip" onClick={() => setPromptOpen(true)} aria-label="System prompt on" title={systemPrompt}>
            <ScrollText size={14} aria-hidden />
            <span className="prompt-chip__text">Prompt</span>
          </button>
        )}
        {knowledge.attached && <AttachedChip attached={knowledge.attached} onClick={() => setKnowledgeOpen(true)} />}
      </div>
      <h1 className="chat-header__title" title={title || undefined}>
        {title || (id ? "" : "New chat")}
      </h1>
      <div className="chat-header__end">
        <ConnectionStatus />
        <Menu label="Conversation options" trigger={<MoreHorizontal size={20} />} items={items} />
      </div>
      <SystemPromptEditor
        open={promptOpen}
        initial={systemPrompt}
        onClose={() => setPromptOpen(false)}
        onSave={(prompt) => {
          setPromptOpen(false);
          onSystemPromptChange(prompt);
        }}
      />
      {id && (
        <CollectionsDialog
          open={knowledgeOpen}
          conversationId={id}
          attached={knowledge.attached ?? []}
          onClose={() => setKnowledgeOpen(false)}
          onChanged={() => void knowledge.reload()}
        />
      )}
      <ConfirmDialog
        open={confirmDelete}
        title="Delete conversation?"
        message={`"${title || "This conversation"}" and all its messages will be deleted. This can't be undone.`}
        confirmLabel="Delete"
        danger
        onCancel={() => setConfirmDelete(false)}
        onConfirm={() => {
          setConfirmDelete(false);
          if (id) void actions.remove(id);
        }}
      />
    </header>
  );
});
