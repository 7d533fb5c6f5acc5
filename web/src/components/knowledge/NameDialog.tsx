import { useEffect, useState } from "react";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";

/** Naming a collection (new, or a rename). */
export function NameDialog({ open, title, initial, onCancel, onSave }: { open: boolean; title: string; initial: string; onCancel: () => void; onSave: (name: string) => void }) {
  const [name, setName] = useState(initial);
  useEffect(() => {
    if (open) setName(initial);
  }, [open, initial]);
  const valid = name.trim() !== "";
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onCancel}
      footer={
        <>
          <Button onClick={onCancel}>Cancel</Button>
          <Button variant="primary" disabled={!valid} onClick={() => onSave(name.trim())}>
            Save
          </Button>
        </>
      }
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) onSave(name.trim());
        }}
      >
        <label className="knowledge__label">
          Name
          <input className="knowledge__input" value={name} maxLength={100} autoFocus onChange={(e) => setName(e.target.value)} />
        </label>
      </form>
    </Dialog>
  );
}
