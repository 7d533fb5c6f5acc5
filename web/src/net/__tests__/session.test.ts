import { beforeEach, describe, expect, it } from "vitest";
import { isSessionId, newSessionId, sessionId, STORAGE_KEYS } from "../session";

beforeEach(() => sessionStorage.clear());

describe("the tab's session id", () => {
  it("is 8-64 url-safe characters, random per tab", () => {
    const a = newSessionId();
    expect(isSessionId(a)).toBe(true);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(newSessionId()).not.toBe(a);
  });

  it("is kept in sessionStorage so reconnects and reloads reuse it", () => {
    const sid = sessionId(sessionStorage);
    expect(sessionId(sessionStorage)).toBe(sid);
    expect(sessionStorage.getItem(STORAGE_KEYS.session)).toBe(sid);
  });

  it("replaces a stored value the server would refuse", () => {
    sessionStorage.setItem(STORAGE_KEYS.session, "bad id!");
    const sid = sessionId(sessionStorage);
    expect(isSessionId(sid)).toBe(true);
    expect(sid).not.toBe("bad id!");
  });
});
