import { useMemo } from "react";
import { api, ApiError } from "../api/client";
import { errorMessage } from "../api/errorMessage";
import type { BranchPage, ModelInfo } from "../api/types";
import type { ConversationView } from "../protocol.gen";
import type { ChatStore } from "../contexts/ChatContext";
import type { Outbox, QueuedFrame } from "../net/outbox";
import { newClientId } from "../net/session";
import { newestLoadedLeaf, olderLeaf, storedLeaf } from "../state/tree";

/** Messages one scroll-up fetches: a few screens (the server caps a page's bytes too). */
const OLDER_PAGE = 200;
/** Conversations whose older page is being fetched (one fetch at a time each). */
const olderInFlight = new Set<string>();
import type { ChatMessage } from "../state/types";

export interface ChatActions {
  models: ModelInfo[];
  defaultModel: string | null;
  /** The longest message the gateway takes. */
  maxMessageChars: number;
  open: (conversationId: string | null) => void;
  /** `attachments`: ids of uploaded files (ready) to attach to the message. */
  send: (content: string, conversationId: string | null, parentId: string | null, model: string | null, attachments?: string[]) => void;
  stop: (turnId: string) => void;
  /** Tools (issue 15): answer a tool call waiting for the user's approval. */
  approveTool: (turnId: string, callId: string, approve: boolean) => void;
  regenerate: (conversationId: string, reply: ChatMessage) => void;
  /** `attachments`: the new version's files; left out, it keeps the original's. */
  edit: (conversationId: string, message: ChatMessage, content: string, attachments?: string[]) => void;
  selectBranch: (conversationId: string, messageId: string) => void;
  /** Fetch the page above the branch on screen (scrolled to its top); resolves when it is in. */
  loadOlder: (conversationId: string) => Promise<void>;
  retryPending: (clientId: string) => void;
  discardPending: (clientId: string) => void;
  /** Take an unsent message back into the composer (e.g. too long): it leaves the list. */
  editPending: (clientId: string) => void;
  /**
   * Stop messages of a conversation that are still waiting to be written to a
   * socket (typed offline): they stay on screen as not sent. True if there was one.
   */
  cancelUnsent: (conversationId: string | null) => boolean;
  rename: (conversationId: string, title: string) => Promise<void>;
  remove: (conversationId: string) => Promise<void>;
  update: (conversationId: string, patch: { model?: string; system_prompt?: string }) => Promise<void>;
  create: (body: { system_prompt?: string; model?: string | null }) => Promise<void>;
  /** A new chat with a system prompt: the conversation is made with it, then the first message goes in. */
  startWithPrompt: (content: string, systemPrompt: string, model: string | null, attachments?: string[]) => Promise<void>;
  importExport: (exported: unknown) => Promise<void>;
  loadList: (cursor: string | null) => Promise<void>;
  reconnectNow: () => void;
}

/** A file that is JSON but not an export fails validation: say that, not "messages: Field required". */
function importFailure(exc: unknown): string {
  if (!(exc instanceof ApiError)) return "Import failed.";
  if (exc.code === "bad_request" && /Field required|Input should|Extra inputs|validation/i.test(exc.message)) {
    return "Import failed: that file is not a tidechat conversation export (use “Export as JSON”).";
  }
  return `Import failed: ${exc.message}`;
}

export interface ChatCommandDeps {
  store: ChatStore;
  outbox: Outbox;
  sendFrame: (frame: QueuedFrame) => void;
  reconnectNow: () => void;
  navigate: (id: string | null) => void;
  toast: (message: string, kind?: "error" | "info") => void;
  onUnauthorized: () => void;
  models: ModelInfo[];
  defaultModel: string | null;
  maxMessageChars: number;
}

/**
 * What components can do to the chat: frames for the socket, HTTP calls, and
 * the local actions that go with them. Reads the store at call time, so the
 * object stays the same while replies stream. HTTP failures become one toast
 * each, through `withToast`.
 */
export function useChatCommands(deps: ChatCommandDeps): ChatActions {
  const { store, outbox, sendFrame, reconnectNow, navigate, toast, onUnauthorized, models, defaultModel, maxMessageChars } = deps;
  return useMemo<ChatActions>(() => {
    const { dispatch, getState } = store;

    /** Run an HTTP action; if it fails, say so in a toast (`failure` words it). */
    const withToast =
      <A extends unknown[]>(run: (...args: A) => Promise<void>, failure: (exc: unknown) => string = errorMessage) =>
      async (...args: A): Promise<void> => {
        try {
          await run(...args);
        } catch (exc) {
          toast(failure(exc));
        }
      };

    const applyView = (view: ConversationView | BranchPage) =>
      dispatch({ type: "conversation_loaded", conversation: view });

    /** Queue a message (new, or an edit that branches) and show it as pending until the server answers. */
    const queue = (content: string, conversationId: string | null, parentId: string | null, frame: (clientId: string) => QueuedFrame) => {
      const clientId = newClientId();
      dispatch({
        type: "message_queued",
        pending: { clientId, conversationId, parentId, content, createdAt: Date.now() / 1000, error: null },
      });
      sendFrame(frame(clientId));
    };

    const send: ChatActions["send"] = (content, conversationId, parentId, model, attachments = []) =>
      queue(content, conversationId, parentId, (clientId) => ({
        type: "message",
        content,
        conversation_id: conversationId,
        parent_id: parentId,
        // An existing conversation answers with its own model (the selector PATCHes it).
        model: conversationId === null ? model : null,
        client_id: clientId,
        ...(attachments.length > 0 ? { attachments } : {}),
      }));

    const branchFrom = (conversationId: string, message: ChatMessage, content: string, attachments?: string[]) => {
      dispatch({ type: "select_branch", conversationId, currentId: message.parentId });
      queue(content, conversationId, message.parentId, (clientId) => ({
        type: "edit",
        conversation_id: conversationId,
        message_id: message.id,
        content,
        client_id: clientId,
        ...(attachments !== undefined ? { attachments } : {}),
      }));
    };

    return {
      models,
      defaultModel,
      maxMessageChars,
      open: (conversationId) => navigate(conversationId),
      send,
      stop: (turnId) => {
        dispatch({ type: "stop_requested", turnId });
        sendFrame({ type: "stop", turn_id: turnId });
      },
      approveTool: (turnId, callId, approve) => {
        sendFrame({ type: "approve", turn_id: turnId, call_id: callId, approve });
      },
      regenerate: (conversationId, reply) => {
        const conv = getState().conversations[conversationId];
        const question = reply.parentId !== null ? conv?.messages[reply.parentId] : undefined;
        if (!question) return;
        // No stored reply to regenerate (the turn failed before one existed): ask the same question again.
        if (reply.localOnly) return branchFrom(conversationId, question, question.content);
        dispatch({ type: "regenerate_requested", conversationId, parentId: question.id });
        sendFrame({ type: "regenerate", conversation_id: conversationId, message_id: reply.id });
      },
      edit: branchFrom,
      selectBranch: (conversationId, messageId) => {
        const conv = getState().conversations[conversationId];
        if (!conv) return;
        const leaf = newestLoadedLeaf(conv, messageId);
        if (leaf === null) {
          // Part of that branch is not loaded (a long conversation): the server
          // finds its newest leaf, makes it current and sends its pages.
          void withToast(async () => {
            const switched = await api.switchBranch(conversationId, messageId);
            if (switched.tail) applyView(switched.tail);
            applyView({ ...switched.down, current_id: switched.current_id });
          })();
          return;
        }
        dispatch({ type: "select_branch", conversationId, currentId: leaf });
        // The server only knows stored messages: point it at the nearest one.
        void withToast(() => api.patchConversation(conversationId, { current_id: storedLeaf(conv, leaf) }).then(() => undefined))();
      },
      loadOlder: async (conversationId) => {
        const conv = getState().conversations[conversationId];
        const leaf = conv ? olderLeaf(conv) : null;
        if (leaf === null || olderInFlight.has(conversationId)) return;
        olderInFlight.add(conversationId);
        try {
          const page = await api.getConversation(conversationId, undefined, { leaf, limit: OLDER_PAGE });
          dispatch({ type: "older_loaded", conversationId, page });
        } catch (exc) {
          toast(errorMessage(exc));
        } finally {
          olderInFlight.delete(conversationId);
        }
      },
      retryPending: (clientId) => {
        const state = getState();
        const pending = state.pending.find((p) => p.clientId === clientId);
        if (!pending) return;
        outbox.remove(clientId);
        dispatch({ type: "pending_discarded", clientId });
        // Onto the conversation as it is now (after a conflict: after what the other tab added).
        const conv = pending.conversationId ? state.conversations[pending.conversationId] : undefined;
        const parentId = conv?.loaded ? storedLeaf(conv) : pending.parentId;
        send(pending.content, pending.conversationId, parentId, defaultModel);
      },
      discardPending: (clientId) => {
        outbox.remove(clientId);
        dispatch({ type: "pending_discarded", clientId });
      },
      editPending: (clientId) => {
        const pending = getState().pending.find((p) => p.clientId === clientId);
        if (!pending) return;
        outbox.remove(clientId);
        dispatch({ type: "pending_discarded", clientId });
        dispatch({ type: "draft_requested", text: pending.content });
      },
      cancelUnsent: (conversationId) => {
        const unsent = outbox.unsentClientIds();
        let cancelled = false;
        for (const p of getState().pending) {
          if (p.conversationId !== conversationId || p.error !== null || !unsent.has(p.clientId)) continue;
          outbox.remove(p.clientId);
          dispatch({ type: "pending_failed", clientId: p.clientId, error: { code: "cancelled", message: "you stopped it before it was sent" } });
          cancelled = true;
        }
        return cancelled;
      },
      rename: withToast(async (conversationId, title) => applyView(await api.patchConversation(conversationId, { title }))),
      remove: withToast(async (conversationId) => {
        await api.deleteConversation(conversationId);
        dispatch({ type: "conversation_removed", conversationId });
      }),
      update: withToast(async (conversationId, patch) => applyView(await api.patchConversation(conversationId, patch))),
      create: withToast(async (body) => {
        const view = await api.createConversation(body);
        applyView(view);
        navigate(view.id);
      }),
      startWithPrompt: withToast(async (content, systemPrompt, model, attachments) => {
        try {
          const view = await api.createConversation({ system_prompt: systemPrompt, model });
          applyView(view);
          navigate(view.id);
          send(content, view.id, null, model, attachments);
        } catch (exc) {
          dispatch({ type: "draft_requested", text: content }); // nothing sent: the text goes back to the box
          throw exc;
        }
      }),
      importExport: withToast(
        async (exported) => {
          const view = await api.importConversation(exported);
          applyView(view);
          navigate(view.id);
          toast("Conversation imported.", "info");
        },
        importFailure,
      ),
      loadList: async (cursor) => {
        dispatch({ type: "list_status", status: "loading" });
        try {
          const page = await api.listConversations({ cursor });
          dispatch({ type: "list_loaded", items: page.items, nextCursor: page.next_cursor, reset: cursor === null });
        } catch (exc) {
          dispatch({ type: "list_status", status: "error" });
          if (exc instanceof ApiError && exc.status === 401) onUnauthorized();
        }
      },
      reconnectNow,
    };
  }, [store, outbox, sendFrame, reconnectNow, navigate, toast, onUnauthorized, models, defaultModel, maxMessageChars]);
}
