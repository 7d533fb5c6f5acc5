import { useChatSelector } from "../../hooks/useChatSelector";

/** The polite status line for screen readers ("The assistant is replying", "Reply complete"). */
export function Announcer() {
  const announcement = useChatSelector((s) => s.announcement);
  return (
    <div className="visually-hidden" role="status" aria-live="polite" data-testid="chat-status">
      {announcement}
    </div>
  );
}
