import { useState } from "react";
import { Button } from "../ui/Button";
import { TextArea } from "../ui/TextArea";

/** Edit a question in place; sending makes a new version (a sibling) and a new reply. */
export function MessageEditor({ initial, onCancel, onSave }: { initial: string; onCancel: () => void; onSave: (content: string) => void }) {
  const [value, setValue] = useState(initial);
  const changed = value.trim() !== "" && value !== initial;
  return (
    <form
      className="msg-editor"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) onSave(value);
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
            if (value.trim()) onSave(value);
          }
        }}
      />
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
