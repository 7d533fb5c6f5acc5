import { Library, Pencil, Plus, Trash2 } from "lucide-react";
import { useCallback, useEffect, useState } from "react";
import { type CollectionInfo, collections } from "../../api/collections";
import { ToastProvider, useToast } from "../../contexts/ToastContext";
import { Button } from "../ui/Button";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { PageHeader } from "../ui/PageHeader";
import { Toasts } from "../chat/Toasts";
import { CollectionFiles } from "./CollectionFiles";
import { NameDialog } from "./NameDialog";
import "./knowledge.css";

function errorText(exc: unknown): string {
  return exc instanceof Error ? exc.message : "Something went wrong.";
}

/** `/knowledge`: the user's knowledge collections, their files, and uploading more. */
export function KnowledgePage() {
  return (
    <ToastProvider>
      <Knowledge />
      <Toasts />
    </ToastProvider>
  );
}

function Knowledge() {
  const { toast } = useToast();
  const [list, setList] = useState<CollectionInfo[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [naming, setNaming] = useState<"new" | "rename" | null>(null);
  const [toDelete, setToDelete] = useState<CollectionInfo | null>(null);

  const reload = useCallback(async () => {
    try {
      const got = await collections.list();
      setList(got);
      setSelected((current) => (current && got.some((c) => c.id === current) ? current : (got[0]?.id ?? null)));
    } catch (exc) {
      toast(errorText(exc));
    }
  }, [toast]);
  useEffect(() => void reload(), [reload]);

  const chosen = list?.find((c) => c.id === selected) ?? null;
  return (
    <div className="knowledge">
      <PageHeader title="Knowledge" />
      <main className="knowledge__main">
        <nav className="knowledge__list" aria-label="Collections">
          <Button variant="primary" icon={<Plus size={16} aria-hidden />} onClick={() => setNaming("new")}>
            New collection
          </Button>
          {list?.length === 0 && <p className="knowledge__hint">No collections yet. A collection is a set of files, such as a team handbook, that a conversation can draw on.</p>}
          <ul>
            {list?.map((c) => (
              <li key={c.id}>
                <button type="button" className={`knowledge__item ${c.id === selected ? "knowledge__item--on" : ""}`} aria-current={c.id === selected} onClick={() => setSelected(c.id)}>
                  <Library size={16} aria-hidden />
                  <span className="knowledge__name">{c.name}</span>
                  <span className="knowledge__count">{c.files === 1 ? "1 file" : `${c.files} files`}</span>
                </button>
              </li>
            ))}
          </ul>
        </nav>
        {chosen && (
          <section className="knowledge__detail" aria-label={chosen.name}>
            <div className="knowledge__toolbar">
              <h2>{chosen.name}</h2>
              <Button size="sm" icon={<Pencil size={14} aria-hidden />} onClick={() => setNaming("rename")}>
                Rename
              </Button>
              <Button size="sm" variant="danger" icon={<Trash2 size={14} aria-hidden />} onClick={() => setToDelete(chosen)}>
                Delete
              </Button>
            </div>
            <CollectionFiles key={chosen.id} collectionId={chosen.id} onChange={() => void reload()} />
          </section>
        )}
      </main>
      <NameDialog
        open={naming !== null}
        title={naming === "new" ? "New collection" : "Rename collection"}
        initial={naming === "rename" ? (chosen?.name ?? "") : ""}
        onCancel={() => setNaming(null)}
        onSave={async (name) => {
          try {
            if (naming === "new") {
              const made = await collections.create(name);
              setSelected(made.id);
            } else if (chosen) await collections.rename(chosen.id, name);
            setNaming(null);
            await reload();
          } catch (exc) {
            toast(errorText(exc));
          }
        }}
      />
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete collection?"
        message={`"${toDelete?.name ?? ""}" and its ${toDelete?.files === 1 ? "file" : `${toDelete?.files ?? 0} files`} will be deleted, and conversations that use it will no longer see them. This can't be undone.`}
        confirmLabel="Delete"
        danger
        onCancel={() => setToDelete(null)}
        onConfirm={async () => {
          const target = toDelete;
          setToDelete(null);
          if (!target) return;
          try {
            await collections.remove(target.id);
          } catch (exc) {
            toast(errorText(exc));
          }
          await reload();
        }}
      />
    </div>
  );
}
