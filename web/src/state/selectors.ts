/** Derived views of the chat state that components read. */
import { isRunning } from "./reducer";
import { branch } from "./tree";
import type { ChatConversation, ChatMessage, ChatState, PendingMessage, Turn } from "./types";

/** The turn still generating in a conversation, if any (one at a time per conversation). */
export function runningTurn(state: ChatState, conversationId: string | null): Turn | undefined {
  if (conversationId === null) return undefined;
  let found: Turn | undefined;
  for (const turn of Object.values(state.turns)) {
    if (turn.conversationId === conversationId && isRunning(turn)) found = turn;
  }
  return found;
}

export function pendingFor(state: ChatState, conversationId: string | null): PendingMessage[] {
  return state.pending.filter((p) => p.conversationId === conversationId);
}

export type Row =
  | { kind: "message"; key: string; message: ChatMessage }
  | { kind: "pending"; key: string; pending: PendingMessage }
  /** A reply that has no message yet (queued turn, regenerate before stream_start). */
  | { kind: "typing"; key: string };

/** What the message list shows: the branch on screen, then unsent messages, then a typing row. */
export function rows(
  conv: ChatConversation | undefined,
  pending: PendingMessage[],
  waitingForReply: boolean,
): Row[] {
  const out: Row[] = [];
  if (conv) for (const m of branch(conv)) out.push({ kind: "message", key: m.id, message: m });
  for (const p of pending) out.push({ kind: "pending", key: `pending-${p.clientId}`, pending: p });
  const last = out[out.length - 1];
  const lastIsUser =
    (last?.kind === "message" && last.message.role === "user") ||
    (last?.kind === "pending" && last.pending.error === null);
  if (waitingForReply && lastIsUser) out.push({ kind: "typing", key: "typing" });
  return out;
}
