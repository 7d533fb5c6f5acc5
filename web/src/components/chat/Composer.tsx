import { ArrowUp, Square } from "lucide-react";
import { memo, useEffect, useId, useRef, useState } from "react";
import { TextArea } from "../ui/TextArea";
import "./composer.css";

export interface ComposerProps {
  /** A reply is being generated: the send button becomes Stop. */
  generating: boolean;
  stopping: boolean;
  online: boolean;
  onSend: (content: string) => void;
  onStop: () => void;
  /** Changes when another conversation opens: focus the box again. */
  focusKey: string | null;
}

/** The message box: Enter sends, Shift+Enter is a new line, Esc (anywhere in the chat) stops. */
export const Composer = memo(function Composer({ generating, stopping, online, onSend, onStop, focusKey }: ComposerProps) {
  const [value, setValue] = useState("");
  const ref = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const canSend = value.trim() !== "" && !generating;

  useEffect(() => {
    // Phones would pop the keyboard up over the conversation; only focus with a real pointer.
    if (window.matchMedia("(pointer: fine)").matches) ref.current?.focus();
  }, [focusKey]);

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
      <div className="composer__box">
        <TextArea
          ref={ref}
          className="composer__input"
          aria-label="Message"
          aria-describedby={hintId}
          placeholder={online ? "Message tidechat" : "Offline — your message will be sent when you're back"}
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
      <p id={hintId} className="composer__hint">
        Enter to send · Shift+Enter for a new line{generating ? " · Esc to stop" : ""}
      </p>
    </form>
  );
});
