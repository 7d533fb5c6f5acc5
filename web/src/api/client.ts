/**
 * The HTTP API (DESIGN.md "HTTP API"), same origin: the HttpOnly session
 * cookie rides along, so no token is ever handled by script.
 */
import type { ConversationView } from "../protocol.gen";
import type {
  ApiErrorBody,
  AuthResponse,
  AuthStatus,
  BranchPage,
  BranchSwitch,
  ConversationPage,
  ConversationPatch,
  FileInfo,
  ModelsResponse,
  QuotaStatus,
  SignInList,
  User,
} from "./types";

/** A failed request, with the server's error code and message when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds until the same request may succeed (429), when the server said. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function isErrorBody(data: unknown): data is ApiErrorBody {
  const error = (data as ApiErrorBody | null)?.error;
  return typeof error === "object" && error !== null && typeof error.message === "string";
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "Can't reach the server. Check your connection.");
  }
  if (response.status === 204) return undefined as T;
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    if (isErrorBody(data)) {
      const retry = data.error.retry_after;
      throw new ApiError(response.status, String(data.error.code), data.error.message, typeof retry === "number" ? retry : null);
    }
    throw new ApiError(response.status, "internal", `The server answered ${response.status}.`);
  }
  return data as T;
}

export const api = {
  signup: (username: string, password: string, invite?: string) =>
    request<AuthResponse>("POST", "/api/auth/signup", invite ? { username, password, invite } : { username, password }),
  /** What an invite link grants (its token goes in the body, never a URL). */
  invite: (token: string) => request<{ username: string | null; expires_at: number }>("POST", "/api/auth/invite", { token }),
  quota: () => request<QuotaStatus>("GET", "/api/quota"),
  login: (username: string, password: string) =>
    request<AuthResponse>("POST", "/api/auth/login", { username, password }),
  logout: () => request<void>("POST", "/api/auth/logout"),
  me: () => request<User>("GET", "/api/auth/me"),
  /** Every other sign-in of the account ends; this one stays. */
  changePassword: (currentPassword: string, newPassword: string) =>
    request<void>("POST", "/api/auth/password", { current_password: currentPassword, new_password: newPassword }),
  signIns: () => request<SignInList>("GET", "/api/auth/sessions"),
  endSignIn: (id: string) => request<void>("DELETE", `/api/auth/sessions/${encodeURIComponent(id)}`),
  authStatus: () => request<AuthStatus>("GET", "/api/auth/status"),

  listConversations: (opts: { q?: string; cursor?: string | null; limit?: number } = {}, signal?: AbortSignal) => {
    const params = new URLSearchParams();
    if (opts.q) params.set("q", opts.q);
    if (opts.cursor) params.set("cursor", opts.cursor);
    params.set("limit", String(opts.limit ?? 50));
    return request<ConversationPage>("GET", `/api/conversations?${params}`, undefined, signal);
  },
  /** The branch on screen from its tail (`leaf`: the page ending there instead). */
  getConversation: (id: string, signal?: AbortSignal, opts: { leaf?: string; limit?: number } = {}) => {
    const params = new URLSearchParams();
    if (opts.leaf) params.set("leaf", opts.leaf);
    if (opts.limit) params.set("limit", String(opts.limit));
    const query = params.size > 0 ? `?${params}` : "";
    return request<BranchPage>("GET", `/api/conversations/${encodeURIComponent(id)}${query}`, undefined, signal);
  },
  /** Show the newest branch through `messageId` (its leaf is found by the server). */
  switchBranch: (id: string, messageId: string) =>
    request<BranchSwitch>("POST", `/api/conversations/${encodeURIComponent(id)}/branch`, { message_id: messageId }),
  createConversation: (body: { title?: string; system_prompt?: string; model?: string | null }) =>
    request<ConversationView>("POST", "/api/conversations", body),
  patchConversation: (id: string, patch: ConversationPatch) =>
    request<BranchPage>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, patch),
  deleteConversation: (id: string) => request<void>("DELETE", `/api/conversations/${encodeURIComponent(id)}`),
  importConversation: (exported: unknown) => request<BranchPage>("POST", "/api/conversations/import", exported),
  exportUrl: (id: string, format: "markdown" | "json") =>
    `/api/conversations/${encodeURIComponent(id)}/export?format=${format}`,

  models: () => request<ModelsResponse>("GET", "/api/models"),
  file: (id: string) => request<FileInfo>("GET", `/api/files/${encodeURIComponent(id)}`),
};

/** Words for a person, by status, for the sign-in form. */
export function authErrorMessage(error: unknown, mode: "login" | "signup"): string {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.status) {
    case 401:
      return "Wrong username or password.";
    case 409:
      return "That username is taken. Pick another one.";
    case 403:
      if (error.code === "account_disabled") return "This account has been disabled by an admin. Ask them to enable it.";
      if (mode === "signup" && error.message) return sentence(error.message);
      return mode === "signup"
        ? "Sign-up is closed on this server. Ask its administrator for an account."
        : "This account can't sign in.";
    case 429:
      return error.retryAfter !== null
        ? `Too many attempts. Try again in ${waitWords(error.retryAfter)}.`
        : "Too many attempts. Wait a minute and try again.";
    case 0:
      return error.message;
    default:
      return error.message || "Something went wrong. Please try again.";
  }
}

function sentence(text: string): string {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

function waitWords(seconds: number): string {
  if (seconds < 90) return seconds === 1 ? "a second" : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

/** The WebSocket URL for this page's origin. No session id in it: URLs end up in logs. */
export function socketUrl(location: Location = window.location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/**
 * The subprotocols a socket offers: `tidechat` (which the server accepts) and
 * the tab's session id, which travels in `Sec-WebSocket-Protocol` instead of
 * the URL (the server reads it from there; proxies do not log it).
 */
export function socketProtocols(sessionId: string): string[] {
  return ["tidechat", `tidechat.session.${sessionId}`];
}
