import { FileText, FileX } from "lucide-react";
import { useState } from "react";
import type { Attachment, Citation } from "../../protocol.gen";

const contentUrl = (id: string) => `/api/files/${encodeURIComponent(id)}/content`;

/** The files a question attached, as small labels under it (images as thumbnails that open). */
export function AttachmentList({ attachments }: { attachments: Attachment[] }) {
  return (
    <ul className="msg-attachments" aria-label="Attached files">
      {attachments.map((a) =>
        a.missing ? (
          // Imported from elsewhere (or deleted since): the name only, no broken link or thumbnail.
          <li key={a.file_id} className="msg-attachment msg-attachment--missing" data-testid="missing-attachment" title="This file isn't in this tidechat">
            <FileX size={13} aria-hidden /> {a.name} <span className="msg-attachment__missing">missing</span>
          </li>
        ) : a.kind === "image" ? (
          <li key={a.file_id} className="msg-attachment msg-attachment--image">
            <a href={contentUrl(a.file_id)} target="_blank" rel="noopener noreferrer" title={`Open ${a.name}`}>
              <img src={contentUrl(a.file_id)} alt={a.name} className="msg-thumb" loading="lazy" />
            </a>
          </li>
        ) : (
          <li key={a.file_id} className="msg-attachment">
            <FileText size={13} aria-hidden /> {a.name}
          </li>
        ),
      )}
    </ul>
  );
}

function where(c: Citation): string {
  return c.page ? `${c.name}, page ${c.page}` : c.name;
}

/** A reply's numbered sources; a click opens the passage the model was given. */
export function SourceList({ citations }: { citations: Citation[] }) {
  const [open, setOpen] = useState<number | null>(null);
  const shown = citations.find((c) => c.n === open);
  return (
    <div className="msg-sources">
      <span className="msg-sources__label">Sources</span>
      <ol className="msg-sources__list">
        {citations.map((c) => (
          <li key={c.n}>
            <button
              type="button"
              className="msg-source"
              aria-expanded={open === c.n}
              data-testid="citation"
              onClick={() => setOpen(open === c.n ? null : c.n)}
            >
              [{c.n}] {where(c)}
            </button>
          </li>
        ))}
      </ol>
      {shown && (
        <blockquote className="msg-passage" data-testid="citation-passage">
          <p className="msg-passage__where">
            [{shown.n}] {where(shown)}
          </p>
          <p className="msg-passage__text">{shown.text}</p>
        </blockquote>
      )}
    </div>
  );
}
