/** Immutable edits of one conversation, shared by the reducer's event handlers. */
import type { BranchPage } from "../api/types";
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
    roots: null,
    headSiblings: {},
  };
}

/** A page of one branch (as opposed to a whole conversation: an import, a new one). */
function isPage(view: ConversationView | BranchPage): view is BranchPage {
  return Array.isArray((view as Partial<BranchPage>).branch);
}

export function fromView(view: ConversationView | BranchPage): ChatConversation {
  const messages: Record<string, ChatMessage> = {};
  for (const [id, m] of Object.entries(view.messages ?? {})) {
    if (m) messages[id] = normalizeMessage(m);
  }
  let roots: string[] | null = null;
  const headSiblings: Record<string, string[]> = {};
  const top = isPage(view) ? view.branch[0] : undefined;
  if (isPage(view) && top !== undefined) {
    if (view.older === null) roots = [...view.head_siblings];
    else headSiblings[top] = [...view.head_siblings];
  }
  return {
    id: view.id,
    title: view.title,
    model: view.model ?? null,
    systemPrompt: view.system_prompt ?? "",
    createdAt: view.created_at,
    updatedAt: view.updated_at,
    currentId: view.current_id ?? null,
    // A page's children come from the server (they name messages not loaded yet).
    messages: isPage(view) ? messages : rebuildChildren(messages),
    loaded: true,
    roots,
    headSiblings,
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
export function mergeView(existing: ChatConversation | undefined, view: ConversationView | BranchPage): ChatConversation {
  const server = fromView(view);
  if (!existing) return server;
  const page = isPage(view);
  let kept = false;
  let messages = { ...server.messages };
  for (const local of Object.values(existing.messages)) {
    if (messages[local.id]) continue;
    const parent = local.parentId !== null ? server.messages[local.parentId] : undefined;
    const keep =
      isInFlight(local) ||
      (local.localOnly && (parent === undefined || parent.children.length === 0)) ||
      // A page holds part of the conversation: what earlier pages loaded stays.
      (page && !local.localOnly);
    if (keep) {
      messages[local.id] = local;
      kept = true;
    }
  }
  if (kept && page) {
    for (const m of Object.values(messages)) {
      const parent = m.parentId !== null ? messages[m.parentId] : undefined;
      if (parent && !parent.children.includes(m.id)) {
        messages = { ...messages, [parent.id]: { ...parent, children: [...parent.children, m.id] } };
      }
    }
  } else if (kept) {
    messages = rebuildChildren(messages);
  }
  let currentId = server.currentId;
  for (const m of Object.values(messages)) {
    if (isInFlight(m) && m.parentId === currentId) currentId = m.id;
  }
  const roots = server.roots ?? (page ? existing.roots : null);
  const headSiblings = page ? { ...existing.headSiblings, ...server.headSiblings } : server.headSiblings;
  return { ...server, messages, currentId, roots, headSiblings };
}

/** Messages of an older page (scrolled to) added to what is loaded; nothing else changes. */
export function addOlder(existing: ChatConversation, view: BranchPage): ChatConversation {
  const merged = mergeView(existing, { ...view, current_id: existing.currentId });
  return {
    ...merged,
    title: existing.title,
    model: existing.model,
    systemPrompt: existing.systemPrompt,
    updatedAt: existing.updatedAt,
  };
}
