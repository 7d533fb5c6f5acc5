/** Walking the message tree: the branch on screen and its siblings. */
import type { Message } from "../protocol.gen";
import { toolsFromSteps } from "./toolSteps";
import type { ChatConversation, ChatMessage } from "./types";

export function normalizeMessage(m: Message, previous?: ChatMessage): ChatMessage {
  return {
    id: m.id,
    parentId: m.parent_id ?? null,
    // children are derived from parent_id; a server copy without them (a worker's
    // stream_end) must not wipe what the client already knows.
    children: m.children && m.children.length > 0 ? [...m.children] : (previous?.children ?? []),
    role: m.role,
    content: m.content,
    model: m.model ?? null,
    finishReason: m.finish_reason ?? null,
    usage: m.usage ?? null,
    createdAt: m.created_at ?? previous?.createdAt ?? Date.now() / 1000,
    error: m.error ?? null,
    notice: m.notice ?? null,
    blocked: m.blocked ?? null,
    status: m.finish_reason === "error" || m.error ? "failed" : "done",
    turnId: null,
    localOnly: false,
    attachments: m.attachments ?? [],
    citations: m.citations ?? [],
    tools: toolsFromSteps(m),
  };
}

/** Recompute every `children` list from `parent_id`, siblings oldest first (as the server does). */
export function rebuildChildren(messages: Record<string, ChatMessage>): Record<string, ChatMessage> {
  const children = new Map<string, string[]>();
  const sorted = Object.values(messages).sort((a, b) => a.createdAt - b.createdAt);
  for (const m of sorted) {
    if (m.parentId !== null && messages[m.parentId]) {
      const list = children.get(m.parentId) ?? [];
      list.push(m.id);
      children.set(m.parentId, list);
    }
  }
  const out: Record<string, ChatMessage> = {};
  for (const m of Object.values(messages)) {
    const next = children.get(m.id) ?? [];
    out[m.id] = sameList(next, m.children) ? m : { ...m, children: next };
  }
  return out;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The roots, oldest first: editing the first question makes siblings here. */
export function rootIds(conv: ChatConversation): string[] {
  const loaded = Object.values(conv.messages)
    .filter((m) => m.parentId === null)
    .sort((a, b) => a.createdAt - b.createdAt)
    .map((m) => m.id);
  if (!conv.roots) return loaded;
  // As the server listed them (some may not be loaded), then any the client added since.
  return [...conv.roots, ...loaded.filter((id) => !conv.roots!.includes(id))];
}

/** The branch from the root down to `leafId` (default: the conversation's current_id), root first. */
export function branch(conv: ChatConversation, leafId: string | null = conv.currentId): ChatMessage[] {
  const path: ChatMessage[] = [];
  const seen = new Set<string>();
  let id = leafId;
  while (id !== null && !seen.has(id)) {
    const m = conv.messages[id];
    if (!m) break;
    seen.add(id);
    path.push(m);
    id = m.parentId;
  }
  return path.reverse();
}

/** A message's siblings (itself included) in order, for `‹ 2/3 ›`. */
export function siblingsOf(conv: ChatConversation, message: ChatMessage): string[] {
  if (message.parentId === null) return rootIds(conv);
  const parent = conv.messages[message.parentId];
  if (parent) return parent.children;
  // The top of what is loaded of a long branch: its page named its siblings.
  return conv.headSiblings[message.id] ?? [message.id];
}

/**
 * Where the page above the branch on screen ends (the parent of its topmost
 * loaded message), or null when the branch is loaded up to its root.
 */
export function olderLeaf(conv: ChatConversation): string | null {
  const path = branch(conv);
  const top = path[0];
  if (!top || top.parentId === null || conv.messages[top.parentId]) return null;
  return top.parentId;
}

/** `newestLeaf`, or null when the way down reaches a message not loaded (the server then finds it). */
export function newestLoadedLeaf(conv: ChatConversation, id: string): string | null {
  let current = id;
  const seen = new Set<string>();
  for (;;) {
    const m = conv.messages[current];
    if (!m) return null;
    if (m.children.length === 0 || seen.has(current)) return current;
    seen.add(current);
    current = m.children[m.children.length - 1]!;
  }
}

/** The newest leaf under `id`: follow the last child down, as switching branches shows it. */
export function newestLeaf(conv: ChatConversation, id: string): string {
  let current = id;
  const seen = new Set<string>();
  for (;;) {
    const m = conv.messages[current];
    if (!m || m.children.length === 0 || seen.has(current)) return current;
    seen.add(current);
    current = m.children[m.children.length - 1]!;
  }
}

/**
 * The newest message of the branch (ending at `leafId`, default the one on
 * screen) that the server knows: where a new message is attached, and what
 * the server is told is current. Skips the client's own notes (an error with
 * no stored reply) and replies still being generated.
 */
export function storedLeaf(conv: ChatConversation, leafId: string | null = conv.currentId): string | null {
  let id = leafId;
  while (id !== null) {
    const m = conv.messages[id];
    if (!m) return null;
    if (!m.localOnly && m.status !== "streaming" && m.status !== "retrying") return id;
    id = m.parentId;
  }
  return null;
}
