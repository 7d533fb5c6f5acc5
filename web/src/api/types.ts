/**
 * Shapes of the HTTP API that are not WebSocket frames (those come from the
 * generated protocol.gen.ts). Kept small and matching DESIGN.md's HTTP table.
 */
import type { ConversationSummary, ErrorCode, UserInfo } from "../protocol.gen";

export type User = UserInfo;

export interface AuthResponse {
  token: string;
  user: User;
}

export interface ConversationPage {
  items: ConversationSummary[];
  next_cursor: string | null;
}

export interface ModelInfo {
  id: string;
  label: string | null;
  context_window: number;
  max_tokens: number;
  default: boolean;
}

export interface ModelsResponse {
  models: ModelInfo[];
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
