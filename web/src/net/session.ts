/**
 * What a tab keeps in sessionStorage so a reload carries on where it was:
 * its session id (so the server's session stream is the same), the last
 * applied event id, replies in flight, and the outbox.
 */
export const STORAGE_KEYS = {
  session: "tidechat:session",
  chat: "tidechat:chat",
  outbox: "tidechat:outbox",
} as const;

const SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;

export function isSessionId(value: unknown): value is string {
  return typeof value === "string" && SESSION_ID.test(value);
}

/** 22 url-safe random characters (~131 bits). */
export function newSessionId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The tab's session id, created on first use and reused by reconnects and reloads. */
export function sessionId(storage: Storage): string {
  const stored = safeGet(storage, STORAGE_KEYS.session);
  if (isSessionId(stored)) return stored;
  const sid = newSessionId();
  safeSet(storage, STORAGE_KEYS.session, sid);
  return sid;
}

export function safeGet(storage: Storage, key: string): string | null {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

export function safeSet(storage: Storage, key: string, value: string): void {
  try {
    storage.setItem(key, value);
  } catch {
    // Quota or privacy mode: the tab still works, it just forgets on reload.
  }
}

export function safeRemove(storage: Storage, key: string): void {
  try {
    storage.removeItem(key);
  } catch {
    // see safeSet
  }
}

export function readJson(storage: Storage, key: string): unknown {
  const raw = safeGet(storage, key);
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}

/** A client id for a message frame, echoed back on its user_message or error. */
export function newClientId(): string {
  return `c${newSessionId()}`;
}
