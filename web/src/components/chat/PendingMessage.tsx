import { AlertTriangle, Clock } from "lucide-react";
import { useChatActions } from "../../contexts/ChatContext";
import type { PendingMessage as Pending } from "../../state/types";
import { Button } from "../ui/Button";
import { CollapsibleText } from "./CollapsibleText";
import "./message.css";

/** A question the server has not acknowledged: sending, waiting for the connection, or refused. */
export interface PendingMessageProps {
  pending: Pending;
  online: boolean;
  position: number;
  setSize: number;
}

/** What can be done with a message that was not sent, by why: sending it again would only fail the same way for some. */
function Recovery({ pending }: { pending: Pending }) {
  const actions = useChatActions();
  const code = pending.error?.code;
  const discard = (
    <Button size="sm" variant="ghost" onClick={() => actions.discardPending(pending.clientId)}>
      Discard
    </Button>
  );
  if (code === "too_large") {
    return (
      <>
        <Button size="sm" onClick={() => actions.editPending(pending.clientId)}>
          Edit
        </Button>
        {discard}
      </>
    );
  }
  if (code === "conflict") {
    // The conversation was reloaded with what the other tab added: send it after that, or rework it.
    return (
      <>
        <Button size="sm" onClick={() => actions.retryPending(pending.clientId)}>
          Send it now
        </Button>
        <Button size="sm" variant="ghost" onClick={() => actions.editPending(pending.clientId)}>
          Edit
        </Button>
        {discard}
      </>
    );
  }
  return (
    <>
      <Button size="sm" onClick={() => actions.retryPending(pending.clientId)}>
        {code === "cancelled" ? "Send anyway" : "Retry"}
      </Button>
      {discard}
    </>
  );
}

export function PendingMessage({ pending, online, position, setSize }: PendingMessageProps) {
  return (
    <article className="msg msg--user msg--pending" aria-label="You said (not sent yet)" aria-posinset={position} aria-setsize={setSize}>
      <div className="msg__inner">
        <CollapsibleText className="msg-bubble" text={pending.content} />
        {pending.error ? (
          <div className="msg-error" role="alert">
            <AlertTriangle size={16} aria-hidden />
            <span>
              {pending.error.code === "conflict"
                ? "Not sent: another tab or device added to this conversation first (shown above). Send it after that, or change it."
                : `Not sent: ${pending.error.message}`}
            </span>
            <Recovery pending={pending} />
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
