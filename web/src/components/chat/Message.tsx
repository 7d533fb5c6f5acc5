import { AlertTriangle, Info } from "lucide-react";
import { lazy, memo, Suspense, useState } from "react";
import { useChatActions } from "../../contexts/ChatContext";
import type { ChatMessage } from "../../state/types";
import { Button } from "../ui/Button";
import { Spinner } from "../ui/Spinner";
import { CollapsibleText } from "./CollapsibleText";
import { MessageActions } from "./MessageActions";
import { MessageEditor } from "./MessageEditor";
import { AttachmentList, SourceList } from "./Sources";
import { ToolSteps } from "./ToolSteps";
import { TypingIndicator } from "./TypingIndicator";
import "./message.css";

// Markdown, KaTeX and highlight.js are most of the bundle: load them after sign-in
// (AppShell prefetches), so the log-in page comes up fast. Until then: plain text.
const Markdown = lazy(() => import("./Markdown").then((m) => ({ default: m.Markdown })));

function RichText({ content }: { content: string }) {
  return (
    <Suspense fallback={<div className="md md--plain">{content}</div>}>
      <Markdown content={content} />
    </Suspense>
  );
}

export interface MessageProps {
  conversationId: string;
  message: ChatMessage;
  siblings: string[];
  /** A reply is being generated in this conversation (editing and regenerating wait). */
  busy: boolean;
  /** Place in the feed (aria-posinset / aria-setsize). */
  position: number;
  setSize: number;
}

const FINISH_NOTES: Partial<Record<NonNullable<ChatMessage["finishReason"]>, string>> = {
  stopped: "Stopped",
  length: "Cut off at the length limit",
};

function AssistantBody({ message }: { message: ChatMessage }) {
  const waiting = message.status === "streaming" && message.content === "" && message.tools.length === 0;
  return (
    <>
      <ToolSteps tools={message.tools} />
      {message.status === "retrying" && (
        <p className="msg-note msg-note--retry">
          <Spinner label="Retrying" /> Retrying the reply…
        </p>
      )}
      {waiting ? <TypingIndicator /> : message.content && <RichText content={message.content} />}
    </>
  );
}

/** One message of the conversation: a question bubble or a reply, with its actions. */
export const Message = memo(function Message({ conversationId, message, siblings, busy, position, setSize }: MessageProps) {
  const actions = useChatActions();
  const [editing, setEditing] = useState(false);
  const isUser = message.role === "user";
  const inFlight = message.status === "streaming" || message.status === "retrying";
  const finishNote = message.finishReason ? FINISH_NOTES[message.finishReason] : undefined;

  return (
    <article
      className={`msg msg--${message.role} ${editing ? "msg--editing" : ""}`}
      aria-label={isUser ? "You said" : "Assistant said"}
      aria-posinset={position}
      aria-setsize={setSize}
      data-message-id={message.id}
      data-status={message.status}
    >
      <div className="msg__inner">
        {message.notice && (
          <p className="msg-note">
            <Info size={14} aria-hidden /> {message.notice}
          </p>
        )}
        {isUser ? (
          editing ? (
            <MessageEditor
              initial={message.content}
              attachments={message.attachments ?? []}
              onCancel={() => setEditing(false)}
              onSave={(content, attachments) => {
                setEditing(false);
                actions.edit(conversationId, message, content, attachments);
              }}
            />
          ) : (
            <>
              <CollapsibleText className="msg-bubble" text={message.content} />
              {message.attachments && message.attachments.length > 0 && <AttachmentList attachments={message.attachments} />}
            </>
          )
        ) : (
          <div className={`msg-body ${inFlight && message.content ? "msg-body--streaming" : ""}`}>
            <AssistantBody message={message} />
            {!inFlight && message.citations && message.citations.length > 0 && <SourceList citations={message.citations} />}
          </div>
        )}
        {message.blocked && (
          <p className="msg-blocked" role="note" data-testid="blocked-notice">
            <AlertTriangle size={14} aria-hidden /> {isUser ? "Not sent to the model" : "This reply was withheld"}: {message.blocked}
          </p>
        )}
        {message.error && !message.blocked && (
          <div className="msg-error" role="alert">
            <AlertTriangle size={16} aria-hidden />
            <span>{message.error.message || "The reply failed."}</span>
            <Button size="sm" onClick={() => actions.regenerate(conversationId, message)} disabled={busy}>
              Retry
            </Button>
          </div>
        )}
        {finishNote && !message.error && <p className="msg-note">{finishNote}</p>}
        {!editing && !inFlight && (
          <MessageActions
            message={message}
            siblings={siblings}
            busy={busy}
            onEdit={isUser ? () => setEditing(true) : undefined}
            onRegenerate={!isUser && !message.error ? () => actions.regenerate(conversationId, message) : undefined}
            onSelectSibling={(id) => actions.selectBranch(conversationId, id)}
          />
        )}
      </div>
    </article>
  );
});
