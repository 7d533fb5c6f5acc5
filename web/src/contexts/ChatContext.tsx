/**
 * Chat state for the signed-in user: the reducer, the socket, and the actions
 * components call. State and actions are two contexts, so a component that
 * only sends (a button) does not re-render on every streamed chunk.
 */
import { useCallback, useEffect, useMemo, useReducer, useRef, useState, type ReactNode } from "react";
import { api, ApiError } from "../api/client";
import type { ModelInfo } from "../api/types";
import { useChatSocket } from "../hooks/useChatSocket";
import { useModels } from "../hooks/useModels";
import { usePersistChat } from "../hooks/usePersistChat";
import { conversationIdFromPath, useRoute } from "../hooks/useRoute";
import type { ConversationView } from "../protocol.gen";
import type { ConnectionStatus } from "../net/connection";
import { Outbox } from "../net/outbox";
import { restoreState } from "../state/persist";
import { reduce } from "../state/reducer";
import { newClientId, readJson, STORAGE_KEYS } from "../net/session";
import { newestLeaf } from "../state/tree";
import type { ChatMessage, ChatState } from "../state/types";
import { useAuth } from "./AuthContext";
import { createStrictContext } from "./strictContext";

export interface ChatStateValue {
  state: ChatState;
  connection: ConnectionStatus;
  /** The open conversation is being fetched over HTTP. */
  loadingActive: boolean;
}

export interface ChatActions {
  models: ModelInfo[];
  defaultModel: string | null;
  open: (conversationId: string | null) => void;
  send: (content: string, conversationId: string | null, parentId: string | null, model: string | null) => void;
  stop: (turnId: string) => void;
  regenerate: (conversationId: string, reply: ChatMessage) => void;
  edit: (conversationId: string, message: ChatMessage, content: string) => void;
  selectBranch: (conversationId: string, messageId: string) => void;
  retryPending: (clientId: string) => void;
  discardPending: (clientId: string) => void;
  rename: (conversationId: string, title: string) => Promise<void>;
  remove: (conversationId: string) => Promise<void>;
  update: (conversationId: string, patch: { model?: string; system_prompt?: string }) => Promise<void>;
  create: (body: { system_prompt?: string; model?: string | null }) => Promise<void>;
  importExport: (exported: unknown) => Promise<void>;
  loadList: (cursor: string | null) => Promise<void>;
  toast: (message: string, kind?: "error" | "info") => void;
  dismissToast: (id: number) => void;
  reconnectNow: () => void;
}

const [ChatStateContext, useChatState] = createStrictContext<ChatStateValue>("ChatState");
const [ChatActionsContext, useChatActions] = createStrictContext<ChatActions>("ChatActions");
export { useChatActions, useChatState };

function messageOf(exc: unknown): string {
  return exc instanceof ApiError ? exc.message : "Something went wrong. Please try again.";
}

export function ChatProvider({ children }: { children: ReactNode }) {
  const { recheck } = useAuth();
  const outbox = useMemo(() => new Outbox(sessionStorage, STORAGE_KEYS.outbox), []);
  const [state, dispatch] = useReducer(reduce, undefined, () => ({
    ...restoreState(
      readJson(sessionStorage, STORAGE_KEYS.chat),
      outbox.list().map((i) => i.frame),
      Date.now(),
    ),
    activeId: conversationIdFromPath(window.location.pathname),
  }));
  const stateRef = useRef(state);
  stateRef.current = state;
  const initialLastEventId = useRef(state.lastEventId).current;
  const { models, defaultModel } = useModels();
  const [routeId, navigate] = useRoute();
  const [loadingActive, setLoadingActive] = useState(false);
  // The socket waits for the first HTTP load, so a resume after a reload lands on the loaded conversation.
  const [ready, setReady] = useState(state.activeId === null);
  const [reloadToken, setReloadToken] = useState(0);

  usePersistChat(state);

  // Address bar -> state (links, back/forward) and state -> address bar (a new chat got its id, a deletion).
  useEffect(() => dispatch({ type: "select", conversationId: routeId }), [routeId]);
  const routeRef = useRef(routeId);
  routeRef.current = routeId;
  useEffect(() => {
    if (state.activeId !== routeRef.current) navigate(state.activeId, { replace: routeRef.current === null });
  }, [state.activeId, navigate]);

  const toast = useCallback((message: string, kind: "error" | "info" = "error") => dispatch({ type: "toast", kind, message }), []);

  const applyView = useCallback((view: ConversationView) => dispatch({ type: "conversation_loaded", conversation: view }), []);

  // Fetch the open conversation if all we have is a stub; again after a reconnect (events may have been missed).
  useEffect(() => {
    const id = state.activeId;
    if (id === null) return;
    const known = stateRef.current.conversations[id];
    if (known?.loaded && reloadToken === 0) {
      setReady(true);
      return;
    }
    const controller = new AbortController();
    setLoadingActive(!known?.loaded);
    api
      .getConversation(id, controller.signal)
      .then(applyView)
      .catch((exc: unknown) => {
        if (controller.signal.aborted) return;
        if (exc instanceof ApiError && exc.status === 404) {
          toast("That conversation doesn't exist or was deleted.");
          navigate(null, { replace: true });
        } else if (exc instanceof ApiError && exc.status === 401) {
          void recheck();
        } else {
          toast(messageOf(exc));
        }
      })
      .finally(() => {
        if (controller.signal.aborted) return;
        setLoadingActive(false);
        setReady(true);
      });
    return () => controller.abort();
  }, [state.activeId, reloadToken, applyView, toast, navigate, recheck]);

  const socket = useChatSocket({
    enabled: ready,
    dispatch,
    outbox,
    initialLastEventId,
    onConnectFailed: () => void recheck(),
    onReconnected: () => setReloadToken((t) => t + 1),
  });
  const { send: sendFrame } = socket;

  const loadList = useCallback(
    async (cursor: string | null) => {
      dispatch({ type: "list_status", status: "loading" });
      try {
        const page = await api.listConversations({ cursor });
        dispatch({ type: "list_loaded", items: page.items, nextCursor: page.next_cursor, reset: cursor === null });
      } catch (exc) {
        dispatch({ type: "list_status", status: "error" });
        if (exc instanceof ApiError && exc.status === 401) void recheck();
      }
    },
    [recheck],
  );

  const queueMessage = useCallback(
    (content: string, conversationId: string | null, parentId: string | null, model: string | null) => {
      const clientId = newClientId();
      dispatch({
        type: "message_queued",
        pending: { clientId, conversationId, parentId, content, createdAt: Date.now() / 1000, error: null },
      });
      sendFrame({
        type: "message",
        content,
        conversation_id: conversationId,
        parent_id: parentId,
        // An existing conversation answers with its own model (the selector PATCHes it).
        model: conversationId === null ? model : null,
        client_id: clientId,
      });
    },
    [sendFrame],
  );

  const actions = useMemo<ChatActions>(
    () => ({
      models,
      defaultModel,
      open: (conversationId) => navigate(conversationId),
      send: queueMessage,
      stop: (turnId) => {
        dispatch({ type: "stop_requested", turnId });
        sendFrame({ type: "stop", turn_id: turnId });
      },
      regenerate: (conversationId, reply) => {
        const conv = stateRef.current.conversations[conversationId];
        const question = reply.parentId !== null ? conv?.messages[reply.parentId] : undefined;
        if (!question) return;
        if (reply.localOnly) {
          // No stored reply to regenerate (the turn failed before one existed): ask the same question again.
          const clientId = newClientId();
          dispatch({ type: "select_branch", conversationId, currentId: question.parentId });
          dispatch({
            type: "message_queued",
            pending: { clientId, conversationId, parentId: question.parentId, content: question.content, createdAt: Date.now() / 1000, error: null },
          });
          sendFrame({ type: "edit", conversation_id: conversationId, message_id: question.id, content: question.content, client_id: clientId });
          return;
        }
        dispatch({ type: "regenerate_requested", conversationId, parentId: question.id });
        sendFrame({ type: "regenerate", conversation_id: conversationId, message_id: reply.id });
      },
      edit: (conversationId, message, content) => {
        const clientId = newClientId();
        dispatch({ type: "select_branch", conversationId, currentId: message.parentId });
        dispatch({
          type: "message_queued",
          pending: { clientId, conversationId, parentId: message.parentId, content, createdAt: Date.now() / 1000, error: null },
        });
        sendFrame({ type: "edit", conversation_id: conversationId, message_id: message.id, content, client_id: clientId });
      },
      selectBranch: (conversationId, messageId) => {
        const conv = stateRef.current.conversations[conversationId];
        if (!conv) return;
        const leaf = newestLeaf(conv, messageId);
        dispatch({ type: "select_branch", conversationId, currentId: leaf });
        // The server only knows stored messages: point it at the nearest one.
        let stored: string | null = leaf;
        while (stored !== null && (conv.messages[stored]?.localOnly || conv.messages[stored]?.status === "streaming")) {
          stored = conv.messages[stored]?.parentId ?? null;
        }
        api.patchConversation(conversationId, { current_id: stored }).catch((exc: unknown) => toast(messageOf(exc)));
      },
      retryPending: (clientId) => {
        const pending = stateRef.current.pending.find((p) => p.clientId === clientId);
        if (!pending) return;
        outbox.remove(clientId);
        dispatch({ type: "pending_discarded", clientId });
        queueMessage(pending.content, pending.conversationId, pending.parentId, defaultModel);
      },
      discardPending: (clientId) => {
        outbox.remove(clientId);
        dispatch({ type: "pending_discarded", clientId });
      },
      rename: async (conversationId, title) => {
        try {
          applyView(await api.patchConversation(conversationId, { title }));
        } catch (exc) {
          toast(messageOf(exc));
        }
      },
      remove: async (conversationId) => {
        try {
          await api.deleteConversation(conversationId);
          dispatch({ type: "conversation_removed", conversationId });
        } catch (exc) {
          toast(messageOf(exc));
        }
      },
      update: async (conversationId, patch) => {
        try {
          applyView(await api.patchConversation(conversationId, patch));
        } catch (exc) {
          toast(messageOf(exc));
        }
      },
      create: async (body) => {
        try {
          const view = await api.createConversation(body);
          applyView(view);
          navigate(view.id);
        } catch (exc) {
          toast(messageOf(exc));
        }
      },
      importExport: async (exported) => {
        try {
          const view = await api.importConversation(exported);
          applyView(view);
          navigate(view.id);
          toast("Conversation imported.", "info");
        } catch (exc) {
          toast(exc instanceof ApiError ? `Import failed: ${exc.message}` : "Import failed.");
        }
      },
      loadList,
      toast,
      dismissToast: (id) => dispatch({ type: "toast_dismissed", id }),
      reconnectNow: socket.reconnectNow,
    }),
    [models, defaultModel, navigate, queueMessage, sendFrame, outbox, applyView, toast, loadList, socket.reconnectNow],
  );

  const stateValue = useMemo(
    () => ({ state, connection: socket.status, loadingActive }),
    [state, socket.status, loadingActive],
  );

  return (
    <ChatActionsContext.Provider value={actions}>
      <ChatStateContext.Provider value={stateValue}>{children}</ChatStateContext.Provider>
    </ChatActionsContext.Provider>
  );
}
