/** Immutable edits of one conversation, shared by the reducer's event handlers. */
import type { ConversationView } from "../protocol.gen";
import { normalizeMessage, rebuildChildren } from "./tree";
import type { ChatConversation, ChatMessage } from "./types";

export function emptyConversation(id: string): ChatConversation {
  return {
    id,
    title: "",
    model: null,
    systemPrompt: "",
    createdAt: 0,
    updatedAt: 0,
    currentId: null,
    messages: {},
    loaded: false,
  };
}

export function fromView(view: ConversationView): ChatConversation {
  const messages: Record<string, ChatMessage> = {};
  for (const [id, m] of Object.entries(view.messages ?? {})) {
    if (m) messages[id] = normalizeMessage(m);
  }
  return {
    id: view.id,
    title: view.title,
    model: view.model ?? null,
    systemPrompt: view.system_prompt ?? "",
    createdAt: view.created_at,
    updatedAt: view.updated_at,
    currentId: view.current_id ?? null,
    messages: rebuildChildren(messages),
    loaded: true,
  };
}

/** Insert or replace a message, linking it under its parent (appended: the newest sibling). */
export function putMessage(conv: ChatConversation, message: ChatMessage): ChatConversation {
  const messages = { ...conv.messages, [message.id]: message };
  const parent = message.parentId !== null ? messages[message.parentId] : undefined;
  if (parent && !parent.children.includes(message.id)) {
    messages[parent.id] = { ...parent, children: [...parent.children, message.id] };
  }
  return { ...conv, messages };
}

export function dropMessage(conv: ChatConversation, id: string): ChatConversation {
  const message = conv.messages[id];
  if (!message) return conv;
  const messages = { ...conv.messages };
  delete messages[id];
  const parent = message.parentId !== null ? messages[message.parentId] : undefined;
  if (parent) {
    messages[parent.id] = { ...parent, children: parent.children.filter((c) => c !== id) };
  }
  const currentId = conv.currentId === id ? message.parentId : conv.currentId;
  return { ...conv, messages, currentId };
}

export function updateMessage(
  conv: ChatConversation,
  id: string,
  change: (m: ChatMessage) => ChatMessage,
): ChatConversation {
  const message = conv.messages[id];
  if (!message) return conv;
  return { ...conv, messages: { ...conv.messages, [id]: change(message) } };
}

/** A created_at for a client-made placeholder that sorts after its siblings, without reading the clock. */
export function placeholderTime(conv: ChatConversation, parentId: string | null): number {
  let t = 0;
  const parent = parentId !== null ? conv.messages[parentId] : undefined;
  if (parent) {
    t = parent.createdAt;
    for (const c of parent.children) t = Math.max(t, conv.messages[c]?.createdAt ?? 0);
  }
  return t + 0.001;
}

function isInFlight(m: ChatMessage): boolean {
  return m.status === "streaming" || m.status === "retrying";
}

/**
 * Merge a conversation as the server returned it over HTTP into what the client
 * has. The server wins for every message it has; the client keeps replies still
 * streaming (the server stores a reply only when it ends) and its own error
 * notes where the server has no reply at all.
 */
export function mergeView(existing: ChatConversation | undefined, view: ConversationView): ChatConversation {
  const server = fromView(view);
  if (!existing) return server;
  let kept = false;
  const messages = { ...server.messages };
  for (const local of Object.values(existing.messages)) {
    if (messages[local.id]) continue;
    const parent = local.parentId !== null ? server.messages[local.parentId] : undefined;
    const keep =
      isInFlight(local) || (local.localOnly && (parent === undefined || parent.children.length === 0));
    if (keep) {
      messages[local.id] = local;
      kept = true;
    }
  }
  let currentId = server.currentId;
  for (const m of Object.values(messages)) {
    if (isInFlight(m) && m.parentId === currentId) currentId = m.id;
  }
  return { ...server, messages: kept ? rebuildChildren(messages) : messages, currentId };
}
