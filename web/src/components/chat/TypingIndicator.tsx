import { useEffect, useState } from "react";

/** After this long with no text, the dots alone would look like a hang: say what is happening. */
const WAIT_NOTICE_MS = 3000;

/**
 * Three dots while a reply has no text yet; after a few seconds, a line that
 * says it is waiting for the model (a local model busy with another request
 * keeps a turn waiting, a large one takes a while to read the prompt).
 */
export function TypingIndicator({ label = "The assistant is typing" }: { label?: string }) {
  const [slow, setSlow] = useState(false);
  useEffect(() => {
    const timer = setTimeout(() => setSlow(true), WAIT_NOTICE_MS);
    return () => clearTimeout(timer);
  }, []);
  return (
    <span className="typing-wrap">
      <span className="typing" role="img" aria-label={label}>
        <span />
        <span />
        <span />
      </span>
      {slow && <span className="typing__notice">Waiting for the model to start…</span>}
    </span>
  );
}
