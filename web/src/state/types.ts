/**
 * The client's view of conversations: the generated wire types with every
 * optional field filled in, plus what only the client knows (a reply being
 * streamed, a message not yet acknowledged).
 */
import type {
  Attachment,
  Citation,
  ConversationSummary,
  ConversationView,
  ErrorInfo,
  Message,
  ToolCall,
  Usage,
} from "../protocol.gen";

/** Tools (issue 15): one tool call of a reply, as shown in its step list. */
export interface ToolView {
  callId: string;
  step: number;
  server: string;
  tool: string;
  arguments: string;
  /** `running` until its result; `waiting` for the user's approval. */
  status: NonNullable<ToolCall["status"]> | "running" | "waiting";
  preview: string;
  durationMs: number | null;
  /** The turn to answer an approval for (live events only). */
  turnId: string | null;
}

export type MessageStatus =
  /** Stored on the server; nothing in flight. */
  | "done"
  /** A reply whose turn is queued or streaming (typing indicator while empty). */
  | "streaming"
  /** A worker took over the turn; partial text was discarded. */
  | "retrying"
  /** The turn failed; `error` says why. */
  | "failed";

export interface ChatMessage {
  id: string;
  parentId: string | null;
  children: string[];
  role: Message["role"];
  content: string;
  model: string | null;
  finishReason: NonNullable<Message["finish_reason"]> | null;
  usage: Usage | null;
  createdAt: number;
  error: ErrorInfo | null;
  notice: string | null;
  /** The moderation hook blocked it: the reason an admin wrote (a reply's text is withheld). */
  blocked?: string | null;
  status: MessageStatus;
  /** The turn generating this reply, while it runs. */
  turnId: string | null;
  /** Made up by the client (an error with no stored reply); never on the server. */
  localOnly: boolean;
  /** User messages: the files attached. */
  attachments?: Attachment[];
  /** Replies: the numbered passages the model was given. */
  citations?: Citation[];
  /** Tools (issue 15): the reply's tool calls, in order. */
  tools: ToolView[];
}

export interface ChatConversation {
  id: string;
  title: string;
  model: string | null;
  systemPrompt: string;
  createdAt: number;
  updatedAt: number;
  currentId: string | null;
  messages: Record<string, ChatMessage>;
  /** False for a stub made from live events before the HTTP load arrived. */
  loaded: boolean;
  /** Every root, oldest first, as the server said (a long conversation is loaded a page at a time). */
  roots: string[] | null;
  /** The siblings of a message whose parent is not loaded yet, as its page said. */
  headSiblings: Record<string, string[]>;
}

export type TurnStatus = "queued" | "streaming" | "retrying" | "stopping" | "done" | "failed";

export interface Turn {
  turnId: string;
  conversationId: string;
  /** The user message this turn answers, when known. */
  parentId: string | null;
  /** The assistant message, once `stream_start` named it. */
  messageId: string | null;
  status: TurnStatus;
}

/** A message the user sent that the server has not acknowledged yet. */
export interface PendingMessage {
  clientId: string;
  /** null: the first message of a new conversation. */
  conversationId: string | null;
  parentId: string | null;
  content: string;
  createdAt: number;
  /** Set when the server rejected it (e.g. too_large, rate_limited). */
  error: ErrorInfo | null;
}

/** An error from the server with nothing on screen to attach it to: shown as a toast. */
export interface Notice {
  id: number;
  message: string;
}

export interface ConversationList {
  byId: Record<string, ConversationSummary>;
  nextCursor: string | null;
  status: "idle" | "loading" | "loaded" | "error";
}

export interface ChatState {
  /** The newest session event applied; events at or before it are duplicates. */
  lastEventId: string | null;
  conversations: Record<string, ChatConversation>;
  turns: Record<string, Turn>;
  pending: PendingMessage[];
  list: ConversationList;
  /** The conversation on screen; null is a new chat. */
  activeId: string | null;
  /** Regenerate requests waiting for their stream_start, by conversation id. */
  awaitingReply: Record<string, { parentId: string; previousCurrentId: string | null }>;
  /** Screen-reader announcement for the polite status line. */
  announcement: string;
  /** Text to put back in the composer (a message taken back to edit); the id changes each time. */
  draft: { id: number; text: string } | null;
  /** The newest few notices (ids increase), for the toast hook to show once each. */
  notices: Notice[];
  nextNoticeId: number;
}

export type { ConversationSummary, ConversationView, Message };
