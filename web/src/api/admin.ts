/** The admin API (`/api/admin/...`, admin only): shapes and calls for the console. */
import { request } from "./client";
import type { SignupMode } from "./types";

export interface AdminUserRow {
  id: string;
  username: string;
  is_admin: boolean;
  disabled: boolean;
  must_change_password: boolean;
  created_at: number;
  last_active_at: number | null;
  groups: string[];
  turns_month: number;
  tokens_month: number;
}

export interface Invite {
  id: string;
  username: string | null;
  is_admin: boolean;
  groups: string[];
  created_by: string;
  created_at: number;
  expires_at: number;
}

export interface NewUser {
  method: "password" | "invite";
  username?: string;
  password?: string;
  is_admin?: boolean;
  groups?: string[];
  invite_hours?: number;
}

export interface Created {
  user: { id: string; username: string } | null;
  password: string | null;
  invite_path: string | null;
  invite: Invite | null;
}

export interface Group {
  name: string;
  description: string;
  created_at: number;
  tokens_day: number | null;
  turns_day: number | null;
  retention_days: number | null;
  retention_on: boolean;
  members: number;
}

export interface ModelAccess {
  id: string;
  label: string;
  groups: string[];
  source: "console" | "models file";
}

export interface QuotaSettings {
  tokens_day: number | null;
  turns_day: number | null;
  conversations: number | null;
  messages: number | null;
  bytes: number | null;
}

export interface EffectiveLimit {
  value: number;
  source: "user" | "group" | "default";
  group: string | null;
}

export interface QuotaView {
  own: QuotaSettings;
  effective: Record<string, EffectiveLimit>;
}

export interface Counts {
  turns: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface DayUsage {
  day: string;
  models: Record<string, Counts>;
}

export interface Party {
  id: string;
  name: string;
}

export interface AuditEntry {
  id: string;
  ts: number;
  kind: string;
  actor: Party | null;
  target: Party | null;
  address: string | null;
  detail: Record<string, unknown>;
}

export interface FlaggedItem {
  id: string;
  ts: number;
  direction: "input" | "output";
  user_id: string;
  username: string;
  conversation_id: string;
  message_id: string;
  model: string | null;
  reason: string;
  rule: string;
  excerpt: string;
}

export interface RetentionPreview {
  enabled: boolean;
  groups: { name: string; days: number; on: boolean; users: number; conversations: number }[];
  total: number;
  last: { at: number; deleted: number; job: string } | null;
}

const enc = encodeURIComponent;

export interface AuditQuery {
  kind?: string;
  category?: "security" | "admin" | "";
  user?: string;
  before?: string | null;
}

function auditParams(q: AuditQuery): URLSearchParams {
  const params = new URLSearchParams();
  if (q.kind) params.set("kind", q.kind);
  if (q.category) params.set("category", q.category);
  if (q.user) params.set("user", q.user);
  if (q.before) params.set("before", q.before);
  return params;
}

export const adminApi = {
  users: (q = "") => request<{ users: AdminUserRow[]; total: number }>("GET", `/api/admin/users?q=${enc(q)}&limit=200`),
  createUser: (body: NewUser) => request<Created>("POST", "/api/admin/users", body),
  patchUser: (id: string, patch: { disabled?: boolean; is_admin?: boolean }) => request<void>("PATCH", `/api/admin/users/${enc(id)}`, patch),
  deleteUser: (id: string) => request<{ conversations: number }>("DELETE", `/api/admin/users/${enc(id)}`),
  resetPassword: (id: string) => request<{ password: string }>("POST", `/api/admin/users/${enc(id)}/password`),
  quotas: (id: string) => request<QuotaView>("GET", `/api/admin/users/${enc(id)}/quotas`),
  setQuotas: (id: string, q: Partial<QuotaSettings>) => request<QuotaView>("PUT", `/api/admin/users/${enc(id)}/quotas`, q),
  invites: () => request<{ invites: Invite[] }>("GET", "/api/admin/invites"),
  revokeInvite: (id: string) => request<void>("DELETE", `/api/admin/invites/${enc(id)}`),
  settings: () => request<{ signup_mode: SignupMode }>("GET", "/api/admin/settings"),
  setSignupMode: (mode: SignupMode) => request<{ signup_mode: SignupMode }>("PUT", "/api/admin/settings", { signup_mode: mode }),
  groups: () => request<{ groups: Group[] }>("GET", "/api/admin/groups"),
  createGroup: (name: string, description = "") => request<Group>("POST", "/api/admin/groups", { name, description }),
  patchGroup: (name: string, patch: Partial<Omit<Group, "name" | "members" | "created_at">>) =>
    request<Group>("PATCH", `/api/admin/groups/${enc(name)}`, patch),
  deleteGroup: (name: string) => request<void>("DELETE", `/api/admin/groups/${enc(name)}`),
  addMember: (group: string, uid: string) => request<void>("PUT", `/api/admin/groups/${enc(group)}/members/${enc(uid)}`),
  removeMember: (group: string, uid: string) => request<void>("DELETE", `/api/admin/groups/${enc(group)}/members/${enc(uid)}`),
  models: () => request<{ models: ModelAccess[] }>("GET", "/api/admin/models"),
  setModelAccess: (id: string, groups: string[] | null) => request<void>("PUT", `/api/admin/models/${enc(id)}/access`, { groups }),
  usage: (days = 30, user?: string) =>
    request<{ days: DayUsage[] }>("GET", `/api/admin/usage?days=${days}${user ? `&user=${enc(user)}` : ""}`),
  audit: (q: AuditQuery) => request<{ entries: AuditEntry[]; next: string | null }>("GET", `/api/admin/audit?${auditParams({ ...q })}`),
  auditExportUrl: (q: AuditQuery) => `/api/admin/audit/export?${auditParams({ ...q, before: null })}`,
  moderation: () => request<{ config: Record<string, unknown> | null; items: FlaggedItem[]; next: string | null }>("GET", "/api/admin/moderation"),
  retention: () => request<RetentionPreview>("GET", "/api/admin/retention"),
  runRetention: () => request<{ job: string }>("POST", "/api/admin/retention/run"),
};
