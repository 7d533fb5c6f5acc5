import { useEffect, useState } from "react";
import { ConfirmDialog } from "../ui/ConfirmDialog";

/** Naming a collection (new, or a rename). */
export function NameDialog({ open, title, initial, onCancel, onSave }: { open: boolean; title: string; initial: string; onCancel: () => void; onSave: (name: string) => void }) {
  const [name, setName] = useState(initial);
  useEffect(() => {
    if (open) setName(initial);
  }, [open, initial]);
  const valid = name.trim() !== "";
  const save = () => valid && onSave(name.trim());
  return (
    <ConfirmDialog open={open} title={title} message="" confirmLabel="Save" confirmDisabled={!valid} onCancel={onCancel} onConfirm={save}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <label className="knowledge__label">
          Name
          <input className="knowledge__input" value={name} maxLength={100} autoFocus onChange={(e) => setName(e.target.value)} />
        </label>
      </form>
    </ConfirmDialog>
  );
}
