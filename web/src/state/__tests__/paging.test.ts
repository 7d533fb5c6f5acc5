import { describe, expect, it } from "vitest";
import type { BranchPage } from "../../api/types";
import type { Message } from "../../protocol.gen";
import { addOlder, mergeView } from "../conversation";
import { branch, newestLoadedLeaf, olderLeaf, rootIds, siblingsOf } from "../tree";

function msg(id: string, parent: string | null, children: string[] = [], t = 0): Message {
  return { id, parent_id: parent, children, role: parent === null || id.startsWith("u") ? "user" : "assistant", content: id, created_at: t };
}

function page(messages: Message[], opts: Partial<BranchPage> = {}): BranchPage {
  return {
    id: "c",
    title: "Long",
    created_at: 1,
    updated_at: 2,
    current_id: messages[messages.length - 1]?.id ?? null,
    messages: Object.fromEntries(messages.map((m) => [m.id, m])),
    message_count: 100,
    branch: messages.map((m) => m.id),
    head_siblings: [messages[0]!.id],
    older: messages[0]!.parent_id ?? null,
    newer: null,
    ...opts,
  };
}

describe("a long conversation loaded a page at a time", () => {
  // u0 -> a1 -> u2 -> {a3, a3b} ; the tail page holds u2 and a3b only.
  const tail = page([msg("u2", "a1", ["a3", "a3b"], 3), msg("a3b", "u2", [], 5)], { head_siblings: ["u2"] });

  it("keeps the server's children (siblings not loaded still count)", () => {
    const conv = mergeView(undefined, tail);
    expect(branch(conv).map((m) => m.id)).toEqual(["u2", "a3b"]);
    expect(siblingsOf(conv, conv.messages["a3b"]!)).toEqual(["a3", "a3b"]);
    expect(siblingsOf(conv, conv.messages["u2"]!)).toEqual(["u2"]);
    expect(olderLeaf(conv)).toBe("a1");
    // a3 is not loaded: switching to it needs the server.
    expect(newestLoadedLeaf(conv, "a3")).toBeNull();
    expect(newestLoadedLeaf(conv, "a3b")).toBe("a3b");
  });

  it("puts an older page above without moving the branch, up to the root", () => {
    const conv = mergeView(undefined, tail);
    const older = page([msg("u0", null, ["a1"], 1), msg("a1", "u0", ["u2"], 2)], {
      current_id: "a1",
      older: null,
      head_siblings: ["u0", "u0b"],
    });
    const next = addOlder(conv, older);
    expect(next.currentId).toBe("a3b");
    expect(branch(next).map((m) => m.id)).toEqual(["u0", "a1", "u2", "a3b"]);
    expect(olderLeaf(next)).toBeNull();
    expect(rootIds(next)).toEqual(["u0", "u0b"]);
    expect(siblingsOf(next, next.messages["u2"]!)).toEqual(["u2"]);
  });

  it("a reload of the tail keeps the older pages already loaded", () => {
    const conv = addOlder(mergeView(undefined, tail), page([msg("a1", "u0", ["u2"], 2)], { current_id: "a1" }));
    const again = mergeView(conv, tail);
    expect(branch(again).map((m) => m.id)).toEqual(["a1", "u2", "a3b"]);
  });
});
