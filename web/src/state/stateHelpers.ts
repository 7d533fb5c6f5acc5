/** Small immutable edits of the chat state, shared by the event reducer and the local actions. */
import type { ConversationSummary, ConversationView } from "../protocol.gen";
import type { ChatConversation, ChatState, Turn } from "./types";

const RUNNING: ReadonlySet<Turn["status"]> = new Set(["queued", "streaming", "retrying", "stopping"]);

export function isRunning(turn: Turn | undefined): boolean {
  return turn !== undefined && RUNNING.has(turn.status);
}

export function localErrorId(turnId: string): string {
  return `local-error-${turnId}`;
}

export function withConversation(state: ChatState, conv: ChatConversation): ChatState {
  return { ...state, conversations: { ...state.conversations, [conv.id]: conv } };
}

export function summaryOf(view: ConversationView): ConversationSummary {
  return {
    id: view.id,
    title: view.title,
    model: view.model ?? null,
    created_at: view.created_at,
    updated_at: view.updated_at,
  };
}

export function withSummary(list: ChatState["list"], summary: ConversationSummary): ChatState["list"] {
  return { ...list, byId: { ...list.byId, [summary.id]: summary } };
}

export function bumpSummary(list: ChatState["list"], id: string, at: number): ChatState["list"] {
  const summary = list.byId[id];
  if (!summary || summary.updated_at >= at) return list;
  return withSummary(list, { ...summary, updated_at: at });
}

export function addNotice(state: ChatState, message: string): ChatState {
  const notice = { id: state.nextNoticeId, message };
  // Keep the last few: the toast list shows no more than that anyway.
  return { ...state, notices: [...state.notices.slice(-3), notice], nextNoticeId: state.nextNoticeId + 1 };
}
