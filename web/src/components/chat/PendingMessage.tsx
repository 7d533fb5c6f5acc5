import { AlertTriangle, Clock } from "lucide-react";
import { useChatActions } from "../../contexts/ChatContext";
import type { PendingMessage as Pending } from "../../state/types";
import { Button } from "../ui/Button";
import "./message.css";

/** A question the server has not acknowledged: sending, waiting for the connection, or refused. */
export interface PendingMessageProps {
  pending: Pending;
  online: boolean;
  position: number;
  setSize: number;
}

export function PendingMessage({ pending, online, position, setSize }: PendingMessageProps) {
  const actions = useChatActions();
  return (
    <article className="msg msg--user msg--pending" aria-label="You said (not sent yet)" aria-posinset={position} aria-setsize={setSize}>
      <div className="msg__inner">
        <div className="msg-bubble">{pending.content}</div>
        {pending.error ? (
          <div className="msg-error" role="alert">
            <AlertTriangle size={16} aria-hidden />
            <span>Not sent: {pending.error.message}</span>
            <Button size="sm" onClick={() => actions.retryPending(pending.clientId)}>
              Retry
            </Button>
            <Button size="sm" variant="ghost" onClick={() => actions.discardPending(pending.clientId)}>
              Discard
            </Button>
          </div>
        ) : (
          !online && (
            <p className="msg-note msg-note--end">
              <Clock size={14} aria-hidden /> Waiting for the connection; it will be sent automatically.
            </p>
          )
        )}
      </div>
    </article>
  );
}
