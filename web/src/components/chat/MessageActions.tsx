import { Check, Copy, Hash, MoreHorizontal, Pencil, RefreshCw } from "lucide-react";
import { useToast } from "../../contexts/ToastContext";
import { useCopyToClipboard } from "../../hooks/useCopyToClipboard";
import type { ChatMessage } from "../../state/types";
import { IconButton } from "../ui/IconButton";
import { Menu } from "../ui/Menu";
import { BranchNav } from "./BranchNav";

export interface MessageActionsProps {
  message: ChatMessage;
  siblings: string[];
  busy: boolean;
  onEdit?: () => void;
  onRegenerate?: () => void;
  onSelectSibling: (id: string) => void;
}

function usageText(message: ChatMessage): string | null {
  const u = message.usage;
  if (!u) return null;
  const prefix = u.estimated ? "≈" : "";
  return `${prefix}${u.completion_tokens ?? 0} tokens`;
}

function usageTitle(message: ChatMessage): string | undefined {
  const u = message.usage;
  if (!u) return undefined;
  const est = u.estimated ? " (estimated)" : "";
  return `Prompt ${u.prompt_tokens ?? 0} · reply ${u.completion_tokens ?? 0} tokens${est}${message.model ? ` · ${message.model}` : ""}`;
}

/** Copy, edit / regenerate, version switcher and token usage under a message. */
export function MessageActions({ message, siblings, busy, onEdit, onRegenerate, onSelectSibling }: MessageActionsProps) {
  const [copied, copy] = useCopyToClipboard();
  const { toast } = useToast();
  // A stored reply's id is its turn's id: what `tidechat replay` and the logs name.
  const turnId = message.role === "assistant" && !message.localOnly ? message.id : null;
  const index = siblings.indexOf(message.id);
  const usage = usageText(message);
  return (
    <div className={`msg-actions msg-actions--${message.role}`}>
      <BranchNav index={index} count={siblings.length} disabled={busy} onSelect={(i) => onSelectSibling(siblings[i]!)} />
      {message.content && (
        <IconButton label={copied ? "Copied" : "Copy message"} size="sm" onClick={() => void copy(message.content)}>
          {copied ? <Check size={16} /> : <Copy size={16} />}
        </IconButton>
      )}
      {onEdit && (
        <IconButton label="Edit message" size="sm" onClick={onEdit} disabled={busy}>
          <Pencil size={16} />
        </IconButton>
      )}
      {onRegenerate && (
        <IconButton label="Regenerate reply" size="sm" onClick={onRegenerate} disabled={busy}>
          <RefreshCw size={16} />
        </IconButton>
      )}
      {turnId && (
        <Menu
          label="More actions"
          align="start"
          trigger={<MoreHorizontal size={16} />}
          triggerClassName="icon-btn icon-btn--sm"
          items={[
            {
              label: "Copy turn ID",
              icon: <Hash size={16} />,
              onSelect: () =>
                void navigator.clipboard
                  .writeText(turnId)
                  .then(() => toast(`Turn ID copied: ${turnId}`, "info"))
                  .catch(() => toast(`Turn ID: ${turnId}`, "info")),
            },
          ]}
        />
      )}
      {usage && (
        <span className="msg-usage" title={usageTitle(message)}>
          {usage}
        </span>
      )}
    </div>
  );
}
