/**
 * The files attached in the composer: each uploads (with progress), then is
 * read and indexed by the server (polled until ready or failed). A message
 * can be sent once every chip is ready; failed ones say why and are left out.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { getFile, uploadFile } from "../api/files";
import type { FileInfo } from "../api/types";

export type ChipPhase = "uploading" | FileInfo["status"];

export interface Chip {
  key: string;
  name: string;
  phase: ChipPhase;
  /** Upload share 0..1 while uploading; then chunks indexed of the total. */
  uploaded: number;
  file: FileInfo | null;
  reason: string | null;
}

const POLL_MS = 700;
let counter = 0;

export function chipLabel(chip: Chip): string {
  switch (chip.phase) {
    case "uploading":
      return `Uploading ${Math.round(chip.uploaded * 100)}%`;
    case "queued":
      return "Waiting to be read";
    case "reading":
      return "Reading…";
    case "indexing":
      return `Indexing ${chip.file?.chunks_done ?? 0}/${chip.file?.chunks_total ?? 0}`;
    case "ready":
      return chip.file?.kind === "pdf" && chip.file.pages ? `Ready · ${chip.file.pages} pages` : "Ready";
    case "failed":
      return chip.reason ?? "Failed";
  }
}

/** `collection`: files go into that knowledge collection (the Knowledge page). */
export function useAttachments(collection?: string) {
  const [chips, setChips] = useState<Chip[]>([]);
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const update = useCallback((key: string, change: Partial<Chip>) => {
    if (alive.current) setChips((list) => list.map((c) => (c.key === key ? { ...c, ...change } : c)));
  }, []);

  const follow = useCallback(
    async (key: string, id: string) => {
      for (;;) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        if (!alive.current) return;
        try {
          const info = await getFile(id);
          update(key, { phase: info.status, file: info, reason: info.status === "failed" ? info.reason : null });
          if (info.status === "ready" || info.status === "failed") return;
        } catch {
          // A network blip: the next poll tries again.
        }
      }
    },
    [update],
  );

  const add = useCallback(
    (files: File[]) => {
      for (const file of files) {
        const key = `chip-${++counter}`;
        setChips((list) => [...list, { key, name: file.name || "pasted file", phase: "uploading", uploaded: 0, file: null, reason: null }]);
        uploadFile(file, (share) => update(key, { uploaded: share }), undefined, collection)
          .then((info) => {
            update(key, { phase: info.status, file: info, uploaded: 1 });
            if (info.status !== "ready" && info.status !== "failed") void follow(key, info.id);
          })
          .catch((exc: unknown) => update(key, { phase: "failed", reason: exc instanceof Error ? exc.message : "Upload failed" }));
      }
    },
    [collection, follow, update],
  );

  const remove = useCallback((key: string) => setChips((list) => list.filter((c) => c.key !== key)), []);
  const clear = useCallback(() => setChips([]), []);
  const busy = chips.some((c) => c.phase !== "ready" && c.phase !== "failed");
  const readyIds = chips.filter((c) => c.phase === "ready" && c.file).map((c) => c.file!.id);
  return { chips, add, remove, clear, busy, readyIds };
}
