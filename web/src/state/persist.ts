/**
 * What survives a page reload: the last applied event id and the replies in
 * flight as far as that event (kept together, so the resume after the reload
 * continues exactly where the text stops), and the unsent messages.
 */
import type { QueuedFrame } from "../net/outbox";
import { initialState, isRunning } from "./reducer";
import { isEventId } from "./eventId";
import { emptyConversation, putMessage } from "./conversation";
import type { ChatMessage, ChatState, PendingMessage, Turn } from "./types";

export interface ChatSnapshot {
  v: 1;
  lastEventId: string | null;
  turns: Turn[];
  messages: { conversationId: string; message: ChatMessage }[];
}

export function snapshotOf(state: ChatState): ChatSnapshot {
  const turns = Object.values(state.turns).filter(isRunning);
  const messages: ChatSnapshot["messages"] = [];
  for (const turn of turns) {
    const message = turn.messageId ? state.conversations[turn.conversationId]?.messages[turn.messageId] : undefined;
    if (message) messages.push({ conversationId: turn.conversationId, message });
  }
  return { v: 1, lastEventId: state.lastEventId, turns, messages };
}

function isSnapshot(data: unknown): data is ChatSnapshot {
  if (typeof data !== "object" || data === null) return false;
  const s = data as Partial<ChatSnapshot>;
  return s.v === 1 && Array.isArray(s.turns) && Array.isArray(s.messages);
}

/** The state a reloaded tab starts from: stubs holding the replies in flight, and the unsent messages. */
export function restoreState(data: unknown, queued: readonly QueuedFrame[], now: number): ChatState {
  const pending: PendingMessage[] = [];
  for (const frame of queued) {
    if ((frame.type === "message" || frame.type === "edit") && frame.client_id) {
      pending.push({
        clientId: frame.client_id,
        conversationId: frame.conversation_id ?? null,
        parentId: frame.type === "message" ? (frame.parent_id ?? null) : null,
        content: frame.content,
        createdAt: now / 1000,
        error: null,
      });
    }
  }
  if (!isSnapshot(data)) return initialState({ pending });
  const state = initialState({
    pending,
    lastEventId: isEventId(data.lastEventId) ? data.lastEventId : null,
  });
  for (const turn of data.turns) state.turns[turn.turnId] = turn;
  for (const { conversationId, message } of data.messages) {
    const conv = state.conversations[conversationId] ?? emptyConversation(conversationId);
    state.conversations[conversationId] = putMessage(conv, message);
  }
  return state;
}
