import { Library } from "lucide-react";
import { useCallback, useEffect, useState } from "react";
import { type CollectionInfo, collections } from "../../api/collections";
import { Button } from "../ui/Button";
import { Dialog } from "../ui/Dialog";

/** The collections a conversation attaches (null: not known yet), and a way to reload them. */
export function useAttachedCollections(conversationId: string | null) {
  const [attached, setAttached] = useState<CollectionInfo[] | null>(null);
  const reload = useCallback(async () => {
    if (!conversationId) return setAttached([]);
    try {
      setAttached(await collections.attached(conversationId));
    } catch {
      setAttached([]);
    }
  }, [conversationId]);
  useEffect(() => {
    setAttached(null);
    void reload();
  }, [reload]);
  return { attached, reload };
}

/** The header's chip: which knowledge collections this conversation draws on. */
export function AttachedChip({ attached, onClick }: { attached: CollectionInfo[]; onClick: () => void }) {
  if (attached.length === 0) return null;
  const names = attached.map((c) => c.name).join(", ");
  return (
    <button type="button" className="prompt-chip" data-testid="attached-collections" onClick={onClick} aria-label={`Knowledge: ${names}`} title={names}>
      <Library size={14} aria-hidden />
      <span className="prompt-chip__text">{attached.length === 1 ? attached[0]?.name : `${attached.length} collections`}</span>
    </button>
  );
}

/** Attach or detach the user's collections to a conversation: each box is one PUT or DELETE. */
export function CollectionsDialog({ open, conversationId, attached, onClose, onChanged }: { open: boolean; conversationId: string; attached: CollectionInfo[]; onClose: () => void; onChanged: () => void }) {
  const [all, setAll] = useState<CollectionInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open) return;
    setError(null);
    collections.list().then(setAll, () => setError("Can't load your collections."));
  }, [open]);
  // Ticked at once (the server's answer follows; a refusal puts the box back).
  const [on, setOn] = useState<Set<string>>(new Set());
  useEffect(() => setOn(new Set(attached.map((c) => c.id))), [attached]);
  return (
    <Dialog open={open} title="Knowledge for this conversation" onClose={onClose} footer={<Button onClick={onClose}>Done</Button>}>
      <p className="collections-dialog__hint">Replies in this conversation draw on the files of the collections ticked here.</p>
      {error && <p role="alert">{error}</p>}
      {all?.length === 0 && (
        <p>
          You have no collections yet. <a href="/knowledge">Create one on the Knowledge page.</a>
        </p>
      )}
      <ul className="collections-dialog__list">
        {all?.map((c) => (
          <li key={c.id}>
            <label>
              <input
                type="checkbox"
                checked={on.has(c.id)}
                onChange={async (e) => {
                  const checked = e.target.checked;
                  setOn((prev) => {
                    const next = new Set(prev);
                    if (checked) next.add(c.id);
                    else next.delete(c.id);
                    return next;
                  });
                  try {
                    if (checked) await collections.attach(conversationId, c.id);
                    else await collections.detach(conversationId, c.id);
                    setError(null);
                  } catch (exc) {
                    setError(exc instanceof Error ? exc.message : "That didn't work.");
                  }
                  onChanged();
                }}
              />
              {c.name} <span className="collections-dialog__count">({c.files === 1 ? "1 file" : `${c.files} files`})</span>
            </label>
          </li>
        ))}
      </ul>
      <p>
        <a href="/knowledge">Manage collections</a>
      </p>
    </Dialog>
  );
}
