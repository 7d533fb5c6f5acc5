import { Trash2, Upload } from "lucide-react";
import { useCallback, useEffect, useRef, useState } from "react";
import { collections } from "../../api/collections";
import type { FileInfo } from "../../api/types";
import { useToast } from "../../contexts/ToastContext";
import { chipLabel, useAttachments } from "../../hooks/useAttachments";
import { useFileDrop } from "../../hooks/useFileDrop";
import { FileChip } from "../chat/FileChip";
import { FilePicker } from "../chat/FilePicker";
import { Button } from "../ui/Button";
import { IconButton } from "../ui/IconButton";
import { VisuallyHidden } from "../ui/VisuallyHidden";

const POLL_MS = 1500;

/** A collection's files with their status, and uploading more (button or drop), with the composer's progress chips. */
export function CollectionFiles({ collectionId, onChange }: { collectionId: string; onChange: () => void }) {
  const { toast } = useToast();
  const uploads = useAttachments(collectionId);
  const [files, setFiles] = useState<FileInfo[] | null>(null);
  const drop = useFileDrop(uploads.add);
  const input = useRef<HTMLInputElement>(null);

  const reload = useCallback(async () => {
    try {
      setFiles(await collections.files(collectionId));
    } catch (exc) {
      toast(exc instanceof Error ? exc.message : "Can't list the files.");
    }
  }, [collectionId, toast]);
  useEffect(() => void reload(), [reload]);

  // An upload that has finished (ready or failed) leaves the chips for the list below.
  const { chips, remove } = uploads;
  useEffect(() => {
    const done = chips.filter((c) => c.phase === "ready" || (c.phase === "failed" && c.file));
    if (done.length === 0) return;
    for (const c of done) remove(c.key);
    void reload();
    onChange();
  }, [chips, remove, reload, onChange]);
  // Files still being read: follow them until they settle.
  const pending = files?.some((f) => f.status !== "ready" && f.status !== "failed") ?? false;
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [pending, reload]);

  return (
    <div
      className={`knowledge__files ${drop.dragging ? "knowledge__files--drop" : ""}`}
      {...drop.handlers}
    >
      <div className="knowledge__upload">
        <Button icon={<Upload size={16} aria-hidden />} onClick={() => input.current?.click()}>
          Add files
        </Button>
        <span className="knowledge__hint">or drop them here. Text, Markdown, code, CSV, JSON, HTML, PDF and DOCX.</span>
        <FilePicker ref={input} testId="collection-file-input" onFiles={uploads.add} />
      </div>
      {chips.length > 0 && (
        <ul className="composer__chips" aria-label="Uploading">
          {chips.map((chip) => (
            <FileChip key={chip.key} chip={chip} onRemove={() => remove(chip.key)} />
          ))}
        </ul>
      )}
      {files?.length === 0 && chips.length === 0 && <p className="knowledge__hint">No files in this collection yet.</p>}
      {files && files.length > 0 && (
        <table className="knowledge__table">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Status</th>
              <th scope="col">
                <VisuallyHidden>Actions</VisuallyHidden>
              </th>
            </tr>
          </thead>
          <tbody>
            {files.map((f) => (
              <tr key={f.id} data-testid="collection-file" data-status={f.status}>
                <td>{f.name}</td>
                <td className={`knowledge__status knowledge__status--${f.status}`}>{chipLabel({ key: f.id, name: f.name, phase: f.status, uploaded: 1, file: f, reason: f.reason })}</td>
                <td>
                  <IconButton
                    label={`Remove ${f.name}`}
                    onClick={async () => {
                      try {
                        await collections.removeFile(collectionId, f.id);
                      } catch (exc) {
                        toast(exc instanceof Error ? exc.message : "Can't remove the file.");
                      }
                      await reload();
                      onChange();
                    }}
                  >
                    <Trash2 size={16} />
                  </IconButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
