/**
 * Shapes of the HTTP API that are not WebSocket frames (those come from the
 * generated protocol.gen.ts). Kept small and matching DESIGN.md's HTTP table.
 */
import type { ConversationSummary, ConversationView, ErrorCode, UserInfo } from "../protocol.gen";

export type User = UserInfo;

export interface AuthResponse {
  token: string;
  user: User;
}

/** A matched word in a search snippet: `text.slice(start, end)`. */
export interface Highlight {
  start: number;
  end: number;
}

/** Where a search matched a conversation's messages (offsets: the client marks them). */
export interface Snippet {
  message_id: string;
  text: string;
  highlights: Highlight[];
}

/** A listed conversation; with a search, its best match first and a snippet when a message matched. */
export interface SearchHit extends ConversationSummary {
  snippet?: Snippet | null;
}

export interface ConversationPage {
  items: SearchHit[];
  next_cursor: string | null;
}

/**
 * A page of one branch (`GET /api/conversations/{id}`): consecutive messages
 * on it (each with its children), oldest first in `branch`.
 */
export interface BranchPage extends ConversationView {
  message_count: number;
  branch: string[];
  /** The first message's siblings, itself included (its parent may not be loaded). */
  head_siblings: string[];
  /** The parent of the first message: the `leaf` of the page above (null at the root). */
  older: string | null;
  newer: string | null;
}

/** A branch switch (`POST /api/conversations/{id}/branch`). */
export interface BranchSwitch {
  current_id: string;
  down: BranchPage;
  tail: BranchPage | null;
}

/** Something the empty chat offers to ask (a model's `suggestions`). */
export interface Suggestion {
  title: string;
  prompt: string;
}

export interface ModelInfo {
  id: string;
  label: string | null;
  context_window: number;
  max_tokens: number;
  default: boolean;
  /** What this model handles well, from the models file or its backend's defaults. */
  suggestions: Suggestion[];
  /** The model reads attached images. */
  vision?: boolean;
  /** The ids of the tool servers its turns may call; empty: no tools. */
  tools?: string[];
}

export interface ModelsResponse {
  models: ModelInfo[];
  /** The longest message the gateway takes. */
  max_message_chars: number;
}

export type SignupMode = "open" | "invite_only" | "closed";

export interface AuthStatus {
  /** False on a fresh install: open on sign-up. */
  has_users: boolean;
  signup_open: boolean;
  /** Who may create an account, as an admin set it (the sign-in page says which). */
  signup_mode: SignupMode;
}

/** What is left of today's quotas (`GET /api/quota`); a limit of 0 is none. */
export interface QuotaStatus {
  day: string;
  tokens: { used: number; limit: number };
  turns: { used: number; limit: number };
  resets_in: number;
}

export interface ConversationPatch {
  title?: string;
  system_prompt?: string;
  model?: string | null;
  current_id?: string | null;
}

export interface ApiErrorBody {
  /** `retry_after`: seconds until a refused request (429) may succeed. */
  error: { code: ErrorCode | string; message: string; retry_after?: number };
}

/** One place the account is signed in (`GET /api/auth/sessions`). */
export interface SignIn {
  id: string;
  created_at: number;
  last_used_at: number;
  user_agent: string;
  /** The sign-in this page uses. */
  current: boolean;
}

export interface SignInList {
  sessions: SignIn[];
}

/** `GET /api/files/{id}`: an uploaded file and how far reading it has got. */
export interface FileInfo {
  id: string;
  name: string;
  kind: "text" | "pdf" | "docx" | "image";
  mime: string;
  size: number;
  status: "queued" | "reading" | "indexing" | "ready" | "failed";
  reason: string | null;
  pages: number;
  chunks_total: number;
  chunks_done: number;
  created_at: number;
  /** The knowledge collection it belongs to; null for a message's file. */
  collection?: string | null;
}
