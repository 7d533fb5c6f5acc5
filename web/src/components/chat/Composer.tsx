import { ArrowUp, Paperclip, Square } from "lucide-react";
import { memo, useEffect, useId, useRef, useState } from "react";
import { useAttachments } from "../../hooks/useAttachments";
import { useFileDrop } from "../../hooks/useFileDrop";
import { useChatSelector } from "../../hooks/useChatSelector";
import { TextArea } from "../ui/TextArea";
import { FileChip } from "./FileChip";
import { FilePicker } from "./FilePicker";
import "./composer.css";

/** Where messages go right now, in words for the placeholder. */
export type Reach = "connected" | "offline" | "unreachable";

export interface ComposerProps {
  /** A reply is being generated: the send button becomes Stop. */
  generating: boolean;
  stopping: boolean;
  reach: Reach;
  /** The longest message the server takes; a counter shows near it, and past it nothing is sent. */
  maxChars: number;
  /** The chosen model reads images; without it, an attached image holds the message back. */
  vision: boolean;
  /** `attachments`: ids of uploaded files that are ready. */
  onSend: (content: string, attachments: string[]) => void;
  onStop: () => void;
  /** Changes when another conversation opens: focus the box again. */
  focusKey: string | null;
}

const PLACEHOLDER: Record<Reach, string> = {
  connected: "Message tidechat",
  offline: "Offline — your message will be sent when you're back",
  unreachable: "Can't reach the server — your message will be sent when it's back",
};

/** The counter appears from this share of the limit on. */
const COUNTER_FROM = 0.9;
const number = new Intl.NumberFormat("en-US");

/** What the file picker offers (the server decides by the bytes, not by this). */

/**
 * The message box: Enter sends, Shift+Enter is a new line, Esc (anywhere in the chat) stops.
 * Files come in by the attach button, by dropping them on the box, or by pasting; each shows
 * as a chip (upload, then reading/indexing progress, then ready or why it failed).
 */
export const Composer = memo(function Composer({ generating, stopping, reach, maxChars, vision, onSend, onStop, focusKey }: ComposerProps) {
  const [value, setValue] = useState("");
  const ref = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const counterId = useId();
  const draft = useChatSelector((s) => s.draft);
  const attachments = useAttachments();
  const fileInput = useRef<HTMLInputElement>(null);
  const drop = useFileDrop(attachments.add);
  const tooLong = value.length > maxChars;
  const blindImage = !vision && attachments.chips.some((c) => c.file?.kind === "image");
  const canSend = value.trim() !== "" && !generating && !tooLong && !attachments.busy && !blindImage;
  const showCounter = value.length >= maxChars * COUNTER_FROM;

  useEffect(() => {
    // Phones would pop the keyboard up over the conversation; only focus with a real pointer.
    if (window.matchMedia("(pointer: fine)").matches) ref.current?.focus();
  }, [focusKey]);

  // A message taken back from the list (too long to send): its text returns here to be edited.
  useEffect(() => {
    if (!draft) return;
    setValue(draft.text);
    ref.current?.focus();
  }, [draft]);

  const submit = () => {
    if (!canSend) return;
    onSend(value, attachments.readyIds);
    setValue("");
    attachments.clear();
  };

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
      {...drop.handlers}
    >
      {attachments.chips.length > 0 && (
        <ul className="composer__chips" aria-label="Attached files">
          {attachments.chips.map((chip) => (
            <FileChip
              key={chip.key}
              chip={chip}
              state={!vision && chip.file?.kind === "image" ? "This model can't see images" : undefined}
              onRemove={() => attachments.remove(chip.key)}
            />
          ))}
        </ul>
      )}
      <div className={`composer__box ${tooLong ? "composer__box--over" : ""} ${drop.dragging ? "composer__box--drop" : ""}`}>
        <button type="button" className="composer__attach" aria-label="Attach files" title="Attach files" onClick={() => fileInput.current?.click()}>
          <Paperclip size={18} aria-hidden />
        </button>
        <FilePicker ref={fileInput} testId="file-input" onFiles={attachments.add} />
        <TextArea
          ref={ref}
          className="composer__input"
          aria-label="Message"
          aria-describedby={showCounter ? `${hintId} ${counterId}` : hintId}
          aria-invalid={tooLong || undefined}
          placeholder={PLACEHOLDER[reach]}
          rows={1}
          value={value}
          maxHeight={220}
          onChange={(e) => setValue(e.target.value)}
          onPaste={(e) => {
            const files = Array.from(e.clipboardData.files);
            if (files.length > 0) {
              e.preventDefault();
              attachments.add(files);
            }
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              submit();
            }
          }}
        />
        {generating ? (
          <button type="button" className="composer__button composer__button--stop" onClick={onStop} disabled={stopping} aria-label="Stop generating" title="Stop (Esc)">
            <Square size={14} fill="currentColor" aria-hidden />
          </button>
        ) : (
          <button type="submit" className="composer__button" disabled={!canSend} aria-label="Send message" title="Send (Enter)">
            <ArrowUp size={18} strokeWidth={2.5} aria-hidden />
          </button>
        )}
      </div>
      <div className="composer__footer">
        <p id={hintId} className="composer__hint">
          {blindImage
            ? "The chosen model can't see images: pick a model that can, or remove the image"
            : attachments.busy
              ? "Files are being read; send when they are ready"
              : `Enter to send · Shift+Enter for a new line${generating ? " · Esc to stop" : ""}`}
        </p>
        {showCounter && (
          <p id={counterId} className="composer__counter" data-testid="composer-counter" data-over={tooLong} aria-live="polite">
            <span className="visually-hidden">{tooLong ? `Too long to send by ${number.format(value.length - maxChars)} characters: ` : "Characters: "}</span>
            {number.format(value.length)} / {number.format(maxChars)}
          </p>
        )}
      </div>
    </form>
  );
});
