import { useEffect, useState } from "react";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";
import { TextArea } from "../ui/TextArea";

export interface SystemPromptEditorProps {
  open: boolean;
  initial: string;
  onClose: () => void;
  onSave: (prompt: string) => void;
}

/** Instructions the model gets before the conversation (the system prompt). */
export function SystemPromptEditor({ open, initial, onClose, onSave }: SystemPromptEditorProps) {
  const [value, setValue] = useState(initial);
  useEffect(() => {
    if (open) setValue(initial);
  }, [open, initial]);
  return (
    <Dialog
      open={open}
      title="System prompt"
      onClose={onClose}
      className="dialog--wide"
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" onClick={() => onSave(value)} disabled={value === initial}>
            Save
          </Button>
        </>
      }
    >
      <p>How should the assistant behave in this conversation? It applies to the replies that follow.</p>
      <TextArea
        aria-label="System prompt"
        autoFocus
        value={value}
        rows={6}
        minHeight={160}
        maxHeight={360}
        placeholder="e.g. You are a concise assistant. Answer in British English."
        onChange={(e) => setValue(e.target.value)}
      />
    </Dialog>
  );
}
