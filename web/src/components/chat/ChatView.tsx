import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useChatActions, useChatStatus, useChatStore } from "../../contexts/ChatContext";
import { useChatSelector } from "../../hooks/useChatSelector";
import type { ConnectionStatus } from "../../net/connection";
import { rows, runningTurn } from "../../state/selectors";
import { plainTitle } from "../../state/titles";
import { olderLeaf, storedLeaf } from "../../state/tree";
import { Button } from "../ui/Button";
import { Spinner } from "../ui/Spinner";
import { Announcer } from "./Announcer";
import { ChatHeader } from "./ChatHeader";
import { Composer, type Reach } from "./Composer";
import { EmptyState } from "./EmptyState";
import { MessageList } from "./MessageList";
import { Toasts } from "./Toasts";
import "./chat.css";

/** The browser's own offline is not the server being away: say which. A first connect is not trouble yet. */
function reachOf(connection: ConnectionStatus): Reach {
  if (connection.state === "connected" || (connection.state === "connecting" && connection.attempt === 0)) return "connected";
  return connection.state === "offline" ? "offline" : "unreachable";
}

export interface ChatViewProps {
  sidebarHidden: boolean;
  onOpenSidebar: () => void;
}

/**
 * The open conversation (or a new chat): header, messages, composer. This
 * re-renders while a reply streams (it shows the reply); the header and the
 * composer get only values that stay the same meanwhile, and are memoized.
 */
export function ChatView({ sidebarHidden, onOpenSidebar }: ChatViewProps) {
  const store = useChatStore();
  const { connection, loadingActive, loadError, retryLoad } = useChatStatus();
  const actions = useChatActions();
  const activeId = useChatSelector((s) => s.activeId);
  const conversation = useChatSelector((s) => (activeId ? s.conversations[activeId] : undefined));
  const turn = useChatSelector((s) => runningTurn(s, activeId));
  const awaiting = useChatSelector((s) => activeId !== null && s.awaitingReply[activeId] !== undefined);
  const allPending = useChatSelector((s) => s.pending);
  const [draftModel, setDraftModel] = useState<string | null>(null);
  // A system prompt set on a blank chat waits here: the conversation is made with it on the first message.
  const [draftPrompt, setDraftPrompt] = useState("");
  const [followToken, setFollowToken] = useState(0);
  const online = connection.state === "connected";
  const reach = reachOf(connection);

  const pending = useMemo(() => allPending.filter((p) => p.conversationId === activeId), [allPending, activeId]);
  const unanswered = pending.some((p) => p.error === null);
  const waiting = Boolean(turn && !turn.messageId) || awaiting || (unanswered && online);
  const rowList = useMemo(() => rows(conversation, pending, waiting), [conversation, pending, waiting]);
  // From the moment a message is sent until its reply ends: the send button is Stop.
  const generating = Boolean(turn) || awaiting || unanswered;
  const conversationModel = conversation?.model;
  const model = conversation ? (conversationModel ?? actions.defaultModel) : (draftModel ?? actions.defaultModel);
  const title = plainTitle(conversation?.title ?? "");
  const hasOlder = conversation ? olderLeaf(conversation) !== null : false;
  const { loadOlder: loadOlderOf } = actions;
  const loadOlder = useCallback(() => (activeId ? loadOlderOf(activeId) : Promise.resolve()), [activeId, loadOlderOf]);

  useEffect(() => {
    document.title = title ? `${title} · tidechat` : "tidechat";
  }, [title]);

  // Stop pressed before the reply had a turn id (message not acknowledged yet, regenerate
  // not started): stop it as soon as the turn is known.
  const stopWhenStarted = useRef(false);
  const stop = useCallback(() => {
    if (turn) {
      if (turn.status !== "stopping") actions.stop(turn.turnId);
    } else if (actions.cancelUnsent(activeId)) {
      // Never written to a socket (typed offline): it is not sent at all, and stays on screen to send later.
    } else if (generating) {
      stopWhenStarted.current = true;
    }
  }, [turn, generating, actions, activeId]);
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
      if (e.key !== "Escape" || e.shiftKey || e.defaultPrevented || !generating) return;
      if (document.querySelector("dialog[open], [role=menu]")) return;
      e.preventDefault();
      stop();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [generating, stop]);

  // Reads the conversation when called, not when rendered: the composer keeps the same callback while a reply streams.
  const send = useCallback(
    (content: string, attachments: string[] = []) => {
      if (activeId === null && draftPrompt) {
        void actions.startWithPrompt(content, draftPrompt, model, attachments);
        setDraftPrompt("");
        return;
      }
      const conv = activeId ? store.getState().conversations[activeId] : undefined;
      const parentId = conv ? storedLeaf(conv) : null;
      actions.send(content, activeId, activeId ? parentId : null, model, attachments);
      setFollowToken((t) => t + 1);
    },
    [store, activeId, actions, model, draftPrompt],
  );

  const onSystemPromptChange = useCallback(
    (prompt: string) => {
      if (activeId) void actions.update(activeId, { system_prompt: prompt });
      else setDraftPrompt(prompt);
    },
    [activeId, actions],
  );

  const onModelChange = useCallback(
    (id: string) => {
      if (activeId) void actions.update(activeId, { model: id });
      else setDraftModel(id);
    },
    [activeId, actions],
  );

  const loading = loadingActive && !conversation?.loaded;
  const failed = loadError !== null && !conversation?.loaded;
  const showEmpty = rowList.length === 0 && !loading && !failed;

  return (
    <main className="chat" aria-label="Chat">
      <ChatHeader
        conversationId={activeId}
        title={title}
        systemPrompt={activeId ? (conversation?.systemPrompt ?? "") : draftPrompt}
        onSystemPromptChange={onSystemPromptChange}
        model={model}
        onModelChange={onModelChange}
        sidebarHidden={sidebarHidden}
        onOpenSidebar={onOpenSidebar}
      />
      {loading ? (
        <div className="chat__loading">
          <Spinner label="Loading conversation" />
        </div>
      ) : failed ? (
        <div className="chat__loading">
          <div className="chat__problem" role="alert">
            <p>
              <strong>Couldn't load this conversation.</strong> {loadError}
            </p>
            <Button onClick={retryLoad}>Try again</Button>
          </div>
        </div>
      ) : showEmpty ? (
        <EmptyState suggestions={actions.models.find((m) => m.id === model)?.suggestions ?? []} onPick={send} />
      ) : (
        <MessageList
          key={activeId ?? "new"}
          conversation={conversation}
          rows={rowList}
          busy={generating}
          online={online}
          followToken={followToken}
          hasOlder={hasOlder}
          onReachTop={loadOlder}
        />
      )}
      <Composer
        generating={generating}
        stopping={turn?.status === "stopping"}
        reach={reach}
        maxChars={actions.maxMessageChars}
        vision={actions.models.find((m) => m.id === model)?.vision ?? false}
        onSend={send}
        onStop={stop}
        focusKey={activeId}
      />
      <Announcer />
      <Toasts />
    </main>
  );
}
