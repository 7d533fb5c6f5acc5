import { describe, expect, it } from "vitest";
import type { FileInfo } from "../../api/types";
import { normalizeMessage } from "../../state/tree";
import { type Chip, chipLabel } from "../useAttachments";

const file = (over: Partial<FileInfo>): FileInfo => ({
  id: "f1",
  name: "report.pdf",
  kind: "pdf",
  mime: "application/pdf",
  size: 10,
  status: "queued",
  reason: null,
  pages: 0,
  chunks_total: 0,
  chunks_done: 0,
  created_at: 0,
  ...over,
});

const chip = (over: Partial<Chip>): Chip => ({ key: "k", name: "report.pdf", phase: "uploading", uploaded: 0, file: null, reason: null, ...over });

describe("a file chip says where the file is", () => {
  it("from upload to ready, or why it failed", () => {
    expect(chipLabel(chip({ uploaded: 0.42 }))).toBe("Uploading 42%");
    expect(chipLabel(chip({ phase: "queued", file: file({}) }))).toBe("Waiting to be read");
    expect(chipLabel(chip({ phase: "reading", file: file({ status: "reading" }) }))).toBe("Reading…");
    expect(chipLabel(chip({ phase: "indexing", file: file({ status: "indexing", chunks_done: 16, chunks_total: 40 }) }))).toBe("Indexing 16/40");
    expect(chipLabel(chip({ phase: "ready", file: file({ status: "ready", pages: 12 }) }))).toBe("Ready · 12 pages");
    expect(chipLabel(chip({ phase: "failed", reason: "the PDF is encrypted and needs a password" }))).toBe("the PDF is encrypted and needs a password");
  });
});

describe("messages keep their documents", () => {
  it("attachments on a question, citations on a reply", () => {
    const q = normalizeMessage({ id: "q", role: "user", content: "hi", attachments: [{ file_id: "f1", name: "a.pdf", kind: "pdf", mime: "application/pdf", size: 3 }] });
    const r = normalizeMessage({ id: "r", role: "assistant", content: "x [1]", citations: [{ n: 1, file_id: "f1", name: "a.pdf", page: 2, text: "passage" }] });
    expect(q.attachments?.map((a) => a.name)).toEqual(["a.pdf"]);
    expect(r.citations?.[0]).toMatchObject({ n: 1, page: 2, text: "passage" });
    expect(normalizeMessage({ id: "p", role: "user", content: "plain" }).citations).toEqual([]);
  });
});
