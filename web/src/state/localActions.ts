/** Local actions: what the user does and what HTTP answers, applied to the same state as server events. */
import type { ConversationSummary, ConversationView, ServerEvent } from "../protocol.gen";
import type { BranchPage } from "../api/types";
import { addOlder, mergeView } from "./conversation";
import { isRunning, summaryOf, withConversation, withSummary } from "./stateHelpers";
import type { ChatState, PendingMessage } from "./types";

export type LocalAction =
  /** Server events batched by the socket hook (one render per batch); applied one by one. */
  | { type: "server_events"; events: ServerEvent[] }
  | { type: "conversation_loaded"; conversation: ConversationView | BranchPage }
  /** An older page of the branch on screen (scrolled up to). */
  | { type: "older_loaded"; conversationId: string; page: BranchPage }
  | { type: "list_loaded"; items: ConversationSummary[]; nextCursor: string | null; reset: boolean }
  | { type: "list_status"; status: ChatState["list"]["status"] }
  | { type: "conversation_removed"; conversationId: string }
  | { type: "select"; conversationId: string | null }
  | { type: "select_branch"; conversationId: string; currentId: string | null }
  | { type: "message_queued"; pending: PendingMessage }
  | { type: "pending_discarded"; clientId: string }
  /** A message that will not be sent after all (stopped while it waited for the connection). */
  | { type: "pending_failed"; clientId: string; error: PendingMessage["error"] }
  | { type: "draft_requested"; text: string }
  | { type: "regenerate_requested"; conversationId: string; parentId: string }
  | { type: "stop_requested"; turnId: string };

/**
 * Every local action's type. An event of a type this client does not know
 * (a newer server, during a deploy) is neither: the reducer ignores it
 * instead of losing its state.
 */
export const LOCAL_ACTIONS: ReadonlySet<string> = new Set<Exclude<LocalAction, { type: "server_events" }>["type"]>([
  "conversation_loaded",
  "older_loaded",
  "list_loaded",
  "list_status",
  "conversation_removed",
  "select",
  "select_branch",
  "message_queued",
  "pending_discarded",
  "pending_failed",
  "draft_requested",
  "regenerate_requested",
  "stop_requested",
]);

/** What the user and HTTP responses do to the state (no server event involved). */
export function applyLocal(state: ChatState, action: Exclude<LocalAction, { type: "server_events" }>): ChatState {
  switch (action.type) {
    case "conversation_loaded": {
      const view = action.conversation;
      const conv = mergeView(state.conversations[view.id], view);
      // A reply the server has stored is over, whatever the client last heard.
      let turns = state.turns;
      for (const turn of Object.values(state.turns)) {
        const stored = turn.messageId ? view.messages?.[turn.messageId] : undefined;
        if (turn.conversationId === view.id && isRunning(turn) && stored?.finish_reason) {
          turns = { ...turns, [turn.turnId]: { ...turn, status: "done" } };
        }
      }
      return { ...withConversation(state, conv), turns, list: withSummary(state.list, summaryOf(view)) };
    }
    case "older_loaded": {
      const conv = state.conversations[action.conversationId];
      return conv ? withConversation(state, addOlder(conv, action.page)) : state;
    }
    case "list_loaded": {
      const byId: Record<string, ConversationSummary> = action.reset ? {} : { ...state.list.byId };
      for (const item of action.items) byId[item.id] = item;
      return { ...state, list: { byId, nextCursor: action.nextCursor, status: "loaded" } };
    }
    case "list_status":
      return { ...state, list: { ...state.list, status: action.status } };
    case "conversation_removed": {
      const conversations = { ...state.conversations };
      delete conversations[action.conversationId];
      const byId = { ...state.list.byId };
      delete byId[action.conversationId];
      return {
        ...state,
        conversations,
        list: { ...state.list, byId },
        pending: state.pending.filter((p) => p.conversationId !== action.conversationId),
        activeId: state.activeId === action.conversationId ? null : state.activeId,
      };
    }
    case "select":
      return state.activeId === action.conversationId ? state : { ...state, activeId: action.conversationId };
    case "select_branch": {
      const conv = state.conversations[action.conversationId];
      return conv ? withConversation(state, { ...conv, currentId: action.currentId }) : state;
    }
    case "message_queued":
      return { ...state, pending: [...state.pending, action.pending] };
    case "pending_discarded":
      return { ...state, pending: state.pending.filter((p) => p.clientId !== action.clientId) };
    case "pending_failed":
      return {
        ...state,
        pending: state.pending.map((p) => (p.clientId === action.clientId ? { ...p, error: action.error } : p)),
      };
    case "draft_requested":
      return { ...state, draft: { id: (state.draft?.id ?? 0) + 1, text: action.text } };
    case "regenerate_requested": {
      const conv = state.conversations[action.conversationId];
      if (!conv) return state;
      return {
        ...withConversation(state, { ...conv, currentId: action.parentId }),
        awaitingReply: {
          ...state.awaitingReply,
          [conv.id]: { parentId: action.parentId, previousCurrentId: conv.currentId },
        },
      };
    }
    case "stop_requested": {
      const turn = state.turns[action.turnId];
      if (!turn || !isRunning(turn)) return state;
      return { ...state, turns: { ...state.turns, [turn.turnId]: { ...turn, status: "stopping" } } };
    }
  }
}

