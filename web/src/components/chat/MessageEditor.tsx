import { FileText, X } from "lucide-react";
import { useState } from "react";
import type { Attachment } from "../../protocol.gen";
import { Button } from "../ui/Button";
import { TextArea } from "../ui/TextArea";

/**
 * Edit a question in place; sending makes a new version (a sibling) and a new
 * reply. The new version keeps the question's files unless they are removed here.
 */
export function MessageEditor({
  initial,
  attachments = [],
  onCancel,
  onSave,
}: {
  initial: string;
  attachments?: Attachment[];
  onCancel: () => void;
  onSave: (content: string, attachments: string[]) => void;
}) {
  const [value, setValue] = useState(initial);
  const [kept, setKept] = useState(attachments.filter((a) => !a.missing));
  const removed = kept.length !== attachments.length;
  const changed = value.trim() !== "" && (value !== initial || removed);
  const save = () => onSave(value, kept.map((a) => a.file_id));
  return (
    <form
      className="msg-editor"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) save();
      }}
    >
      <TextArea
        aria-label="Edit message"
        autoFocus
        value={value}
        maxHeight={320}
        onChange={(e) => setValue(e.target.value)}
        onFocus={(e) => e.currentTarget.setSelectionRange(e.currentTarget.value.length, e.currentTarget.value.length)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            e.stopPropagation();
            onCancel();
          } else if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            if (value.trim()) save();
          }
        }}
      />
      {kept.length > 0 && (
        <ul className="composer__chips" aria-label="Files kept">
          {kept.map((a) => (
            <li key={a.file_id} className="file-chip file-chip--ready" data-testid="edit-file-chip">
              <FileText size={14} aria-hidden />
              <span className="file-chip__name">{a.name}</span>
              <button type="button" className="file-chip__remove" aria-label={`Remove ${a.name}`} onClick={() => setKept((list) => list.filter((x) => x.file_id !== a.file_id))}>
                <X size={12} aria-hidden />
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="msg-editor__buttons">
        <Button size="sm" onClick={onCancel}>
          Cancel
        </Button>
        <Button size="sm" variant="primary" type="submit" disabled={!changed}>
          Send
        </Button>
      </div>
    </form>
  );
}
