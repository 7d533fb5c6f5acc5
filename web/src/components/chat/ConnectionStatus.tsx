import { CloudOff, RefreshCw } from "lucide-react";
import { useChatActions, useChatStatus } from "../../contexts/ChatContext";
import { useNow } from "../../hooks/useNow";
import "./header.css";

/** Connected: nothing. Otherwise a pill saying what's happening, with "Retry now" while waiting. */
export function ConnectionStatus() {
  const { connection } = useChatStatus();
  const { reconnectNow } = useChatActions();
  const now = useNow(1000, connection.state === "reconnecting");

  let text: string | null = null;
  let tone = "muted";
  if (connection.state === "reconnecting") {
    const seconds = Math.max(0, Math.ceil((connection.retryAt - now) / 1000));
    text = seconds > 0 ? `Can't reach the server · Reconnecting in ${seconds}s` : "Can't reach the server · Reconnecting…";
    tone = "warn";
  } else if (connection.state === "connecting" && connection.attempt > 0) {
    text = "Reconnecting…";
    tone = "warn";
  } else if (connection.state === "offline") {
    text = "Offline";
  }

  return (
    <div className="conn-status" role="status" aria-live="polite">
      {text && (
        <span className={`conn-status__pill conn-status__pill--${tone}`} data-state={connection.state}>
          {connection.state === "offline" ? <CloudOff size={14} aria-hidden /> : <span className="conn-status__dot" aria-hidden />}
          {text}
          {connection.state === "reconnecting" && (
            <button type="button" className="conn-status__retry" onClick={reconnectNow}>
              <RefreshCw size={12} aria-hidden /> Retry now
            </button>
          )}
        </span>
      )}
    </div>
  );
}
