import { ArrowUp, Square } from "lucide-react";
import { memo, useEffect, useId, useRef, useState } from "react";
import { useChatSelector } from "../../hooks/useChatSelector";
import { TextArea } from "../ui/TextArea";
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
  onSend: (content: string) => void;
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

/** The message box: Enter sends, Shift+Enter is a new line, Esc (anywhere in the chat) stops. */
export const Composer = memo(function Composer({ generating, stopping, reach, maxChars, onSend, onStop, focusKey }: ComposerProps) {
  const [value, setValue] = useState("");
  const ref = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const counterId = useId();
  const draft = useChatSelector((s) => s.draft);
  const tooLong = value.length > maxChars;
  const canSend = value.trim() !== "" && !generating && !tooLong;
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
    onSend(value);
    setValue("");
  };

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <div className={`composer__box ${tooLong ? "composer__box--over" : ""}`}>
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
          Enter to send · Shift+Enter for a new line{generating ? " · Esc to stop" : ""}
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
