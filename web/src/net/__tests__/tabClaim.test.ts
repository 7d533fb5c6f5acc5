import { beforeEach, describe, expect, it } from "vitest";
import { STORAGE_KEYS } from "../session";
import { claimTabSession } from "../tabClaim";

/** A stand-in for a second tab's sessionStorage. */
function memoryStorage(): Storage {
  const data = new Map<string, string>();
  return {
    get length() {
      return data.size;
    },
    clear: () => data.clear(),
    getItem: (k) => data.get(k) ?? null,
    key: (i) => [...data.keys()][i] ?? null,
    removeItem: (k) => void data.delete(k),
    setItem: (k, v) => void data.set(k, v),
  };
}

beforeEach(() => sessionStorage.clear());

describe("duplicated tabs", () => {
  it("a copy of a live tab's session starts afresh; the original keeps its outbox", async () => {
    const original = memoryStorage();
    original.setItem(STORAGE_KEYS.session, "sessionAAAA1234");
    original.setItem(STORAGE_KEYS.outbox, "[queued]");
    await claimTabSession(original, 30); // nobody else: it is ours

    const copy = memoryStorage();
    copy.setItem(STORAGE_KEYS.session, "sessionAAAA1234");
    copy.setItem(STORAGE_KEYS.outbox, "[queued]");
    copy.setItem(STORAGE_KEYS.chat, "{}");
    await claimTabSession(copy, 500);
    expect(copy.getItem(STORAGE_KEYS.session)).toBeNull();
    expect(copy.getItem(STORAGE_KEYS.outbox)).toBeNull();
    expect(original.getItem(STORAGE_KEYS.outbox)).toBe("[queued]");
  });

  it("a reloaded tab (no other holder) keeps everything", async () => {
    const tab = memoryStorage();
    tab.setItem(STORAGE_KEYS.session, "sessionBBBB5678");
    tab.setItem(STORAGE_KEYS.chat, '{"v":1}');
    await claimTabSession(tab, 30);
    expect(tab.getItem(STORAGE_KEYS.session)).toBe("sessionBBBB5678");
    expect(tab.getItem(STORAGE_KEYS.chat)).toBe('{"v":1}');
  });
});
