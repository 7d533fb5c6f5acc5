/**
 * Chat for the signed-in user, put together from focused hooks: the store
 * (one reducer for live and replayed events), the conversation on screen
 * (address bar, HTTP load), the socket, and the actions components call.
 *
 * Three contexts, so each component re-renders only for what it shows: the
 * store itself never changes (components pick slices with `useChatSelector`),
 * the status (connection, loading) changes a few times a session, and the
 * actions only when the model list arrives. A streamed chunk re-renders the
 * message list, not the sidebar, header or composer.
 */
import { useCallback, useEffect, useMemo, useRef, type ReactNode } from "react";
import { useActiveConversation } from "../hooks/useActiveConversation";
import { type ChatActions, useChatCommands } from "../hooks/useChatCommands";
import { useChatSocket } from "../hooks/useChatSocket";
import { useModels } from "../hooks/useModels";
import { usePersistChat } from "../hooks/usePersistChat";
import { conversationIdFromPath } from "../hooks/useRoute";
import type { ConnectionStatus } from "../net/connection";
import { Outbox } from "../net/outbox";
import { readJson, STORAGE_KEYS } from "../net/session";
import { restoreState } from "../state/persist";
import { type ChatAction, reduce } from "../state/reducer";
import { createStore, type Store } from "../state/store";
import type { ChatState } from "../state/types";
import { useAuth } from "./AuthContext";
import { createStrictContext } from "./strictContext";
import { useToast } from "./ToastContext";

export type ChatStore = Store<ChatState, ChatAction>;
export type { ChatActions };

export interface ChatStatus {
  connection: ConnectionStatus;
  /** The open conversation is being fetched over HTTP. */
  loadingActive: boolean;
  /** Its load failed and there is nothing to show; `retryLoad` tries again. */
  loadError: string | null;
  retryLoad: () => void;
}

const [ChatStoreContext, useChatStore] = createStrictContext<ChatStore>("ChatStore");
const [ChatStatusContext, useChatStatus] = createStrictContext<ChatStatus>("ChatStatus");
const [ChatActionsContext, useChatActions] = createStrictContext<ChatActions>("ChatActions");
export { useChatActions, useChatStatus, useChatStore };

/** The tab's chat state as it was before a reload (sessionStorage), on the conversation in the address bar. */
function restoredStore(outbox: Outbox): ChatStore {
  const restored = restoreState(
    readJson(sessionStorage, STORAGE_KEYS.chat),
    outbox.list().map((i) => i.frame),
    Date.now(),
  );
  return createStore(reduce, { ...restored, activeId: conversationIdFromPath(window.location.pathname) });
}

/** Errors the reducer could attach to nothing on screen become toasts, each once. */
function useNoticeToasts(store: ChatStore, toast: (message: string) => void): void {
  const shown = useRef(0);
  useEffect(() => {
    const show = () => {
      for (const notice of store.getState().notices) {
        if (notice.id > shown.current) {
          shown.current = notice.id;
          toast(notice.message);
        }
      }
    };
    show();
    return store.subscribe(show);
  }, [store, toast]);
}

/**
 * A message refused with `conflict` (another tab or device added to the
 * conversation first): load the conversation again, so the user sees what
 * was added before sending theirs onto it (the pending message offers that).
 */
function useConflictRefresh(store: ChatStore, reload: () => void): void {
  const handled = useRef(new Set<string>());
  useEffect(() => {
    const check = () => {
      for (const p of store.getState().pending) {
        if (p.error?.code === "conflict" && !handled.current.has(p.clientId)) {
          handled.current.add(p.clientId);
          reload();
        }
      }
    };
    check();
    return store.subscribe(check);
  }, [store, reload]);
}

export function ChatProvider({ children }: { children: ReactNode }) {
  const { recheck } = useAuth();
  const { toast } = useToast();
  const outbox = useMemo(() => new Outbox(sessionStorage, STORAGE_KEYS.outbox), []);
  const store = useMemo(() => restoredStore(outbox), [outbox]);
  const initialLastEventId = useRef(store.getState().lastEventId).current;
  const { models, defaultModel, maxMessageChars } = useModels();
  const onUnauthorized = useCallback(() => void recheck(), [recheck]);

  usePersistChat(store);
  useNoticeToasts(store, toast);
  const active = useActiveConversation(store, { toast, onUnauthorized });

  const socket = useChatSocket({
    enabled: active.ready,
    dispatch: store.dispatch,
    outbox,
    initialLastEventId,
    onConnectFailed: onUnauthorized,
    onReconnected: active.reload,
    watching: active.activeId,
    onFirstConnected: () => {
      active.reload();
      void loadList.current?.(null);
    },
  });
  useConflictRefresh(store, active.reload);

  const loadList = useRef<ChatActions["loadList"] | null>(null);
  const actions = useChatCommands({
    store,
    outbox,
    sendFrame: socket.send,
    reconnectNow: socket.reconnectNow,
    navigate: active.navigate,
    toast,
    onUnauthorized,
    models,
    defaultModel,
    maxMessageChars,
  });

  loadList.current = actions.loadList;

  const status = useMemo(
    () => ({ connection: socket.status, loadingActive: active.loadingActive, loadError: active.loadError, retryLoad: active.reload }),
    [socket.status, active.loadingActive, active.loadError, active.reload],
  );

  return (
    <ChatStoreContext.Provider value={store}>
      <ChatActionsContext.Provider value={actions}>
        <ChatStatusContext.Provider value={status}>{children}</ChatStatusContext.Provider>
      </ChatActionsContext.Provider>
    </ChatStoreContext.Provider>
  );
}
