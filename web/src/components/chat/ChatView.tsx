import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useChatActions, useChatState } from "../../contexts/ChatContext";
import { pendingFor, rows, runningTurn } from "../../state/selectors";
import { storedLeaf } from "../../state/tree";
import { Spinner } from "../ui/Spinner";
import { ToastList } from "../ui/ToastList";
import { ChatHeader } from "./ChatHeader";
import { Composer } from "./Composer";
import { EmptyState } from "./EmptyState";
import { MessageList } from "./MessageList";
import "./chat.css";

export interface ChatViewProps {
  sidebarHidden: boolean;
  onOpenSidebar: () => void;
}

/** The open conversation (or a new chat): header, messages, composer. */
export function ChatView({ sidebarHidden, onOpenSidebar }: ChatViewProps) {
  const { state, connection, loadingActive } = useChatState();
  const actions = useChatActions();
  const activeId = state.activeId;
  const conversation = activeId ? state.conversations[activeId] : undefined;
  const [draftModel, setDraftModel] = useState<string | null>(null);
  const [followToken, setFollowToken] = useState(0);
  const online = connection.state === "connected";

  const turn = runningTurn(state, activeId);
  const awaiting = activeId !== null && state.awaitingReply[activeId] !== undefined;
  const pending = useMemo(() => pendingFor(state, activeId), [state, activeId]);
  const unanswered = pending.some((p) => p.error === null);
  const waiting = Boolean(turn && !turn.messageId) || awaiting || (unanswered && online);
  const rowList = useMemo(() => rows(conversation, pending, waiting), [conversation, pending, waiting]);
  // From the moment a message is sent until its reply ends: the send button is Stop.
  const generating = Boolean(turn) || awaiting || unanswered;
  const model = conversation ? (conversation.model ?? actions.defaultModel) : (draftModel ?? actions.defaultModel);

  useEffect(() => {
    document.title = conversation?.title ? `${conversation.title} · tidechat` : "tidechat";
  }, [conversation?.title]);

  // Stop pressed before the reply had a turn id (message not acknowledged yet, regenerate
  // not started): stop it as soon as the turn is known.
  const stopWhenStarted = useRef(false);
  const stop = useCallback(() => {
    if (turn) {
      if (turn.status !== "stopping") actions.stop(turn.turnId);
    } else if (generating) {
      stopWhenStarted.current = true;
    }
  }, [turn, generating, actions]);
  useEffect(() => {
    if (turn && stopWhenStarted.current) {
      stopWhenStarted.current = false;
      if (turn.status !== "stopping") actions.stop(turn.turnId);
    } else if (!generating) {
      stopWhenStarted.current = false;
    }
  }, [turn, generating, actions]);
  useEffect(() => {
    stopWhenStarted.current = false;
  }, [activeId]);

  // Esc stops the reply from anywhere in the chat (dialogs and the message editor handle their own Esc).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape" || e.defaultPrevented || !generating) return;
      if (document.querySelector("dialog[open], [role=menu]")) return;
      e.preventDefault();
      stop();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [generating, stop]);

  const send = (content: string) => {
    const parentId = conversation ? storedLeaf(conversation) : null;
    actions.send(content, activeId, activeId ? parentId : null, model);
    setFollowToken((t) => t + 1);
  };

  const showEmpty = rowList.length === 0 && !(loadingActive && !conversation?.loaded);

  return (
    <main className="chat" aria-label="Chat">
      <ChatHeader
        conversation={conversation}
        model={model}
        onModelChange={(id) => {
          if (activeId) void actions.update(activeId, { model: id });
          else setDraftModel(id);
        }}
        sidebarHidden={sidebarHidden}
        onOpenSidebar={onOpenSidebar}
      />
      {loadingActive && !conversation?.loaded ? (
        <div className="chat__loading">
          <Spinner label="Loading conversation" />
        </div>
      ) : showEmpty ? (
        <EmptyState suggestions={actions.models.find((m) => m.id === model)?.suggestions ?? []} onPick={send} />
      ) : (
        <MessageList key={activeId ?? "new"} conversation={conversation} rows={rowList} busy={generating} online={online} followToken={followToken} />
      )}
      <Composer
        generating={generating}
        stopping={turn?.status === "stopping"}
        online={online}
        onSend={send}
        onStop={stop}
        focusKey={activeId}
      />
      <div className="visually-hidden" role="status" aria-live="polite" data-testid="chat-status">
        {state.announcement}
      </div>
      <ToastList toasts={state.toasts} onDismiss={actions.dismissToast} />
    </main>
  );
}
