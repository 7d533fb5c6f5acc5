import { beforeEach, describe, expect, it } from "vitest";
import type { ServerEvent } from "../../protocol.gen";
import { initialState, reduce, reduceAll, type ChatAction } from "../reducer";
import { restoreState, snapshotOf } from "../persist";
import { rows, runningTurn } from "../selectors";
import { branch, newestLeaf, siblingsOf, storedLeaf } from "../tree";
import type { ChatState } from "../types";
import { ev, msg, resetIds, turnEvents, view } from "./fixtures";

beforeEach(resetIds);

const text = (state: ChatState, conv: string, id: string) => state.conversations[conv]?.messages[id]?.content;
const onScreen = (state: ChatState, conv = "conv1") => branch(state.conversations[conv]!).map((m) => `${m.role}:${m.content}`);

/** A state where conv1 exists and is open. */
function withConversation(): ChatState {
  return reduceAll(initialState(), [
    { type: "select", conversationId: "conv1" },
    { type: "conversation_loaded", conversation: view("conv1") },
  ]);
}

describe("a turn as it streams", () => {
  it("replaces the optimistic message, shows typing, appends chunks and ends with the stored text", () => {
    let state = reduce(initialState(), {
      type: "message_queued",
      pending: { clientId: "c1", conversationId: null, parentId: null, content: "Hi", createdAt: 1, error: null },
    });
    expect(rows(undefined, state.pending, true).map((r) => r.kind)).toEqual(["pending", "typing"]);

    const created = ev.created(view("conv1"));
    const [user, start, c1, c2, c3] = turnEvents({ clientId: "c1" });
    state = reduceAll(state, [created, user!]);
    // The new chat follows its first message to the conversation the server made.
    expect(state.activeId).toBe("conv1");
    expect(state.pending).toEqual([]);
    expect(runningTurn(state, "conv1")?.status).toBe("queued");
    expect(state.list.byId.conv1?.title).toBe("New chat");

    state = reduce(state, start!);
    const placeholder = state.conversations.conv1!.messages.a1!;
    expect(placeholder).toMatchObject({ role: "assistant", content: "", status: "streaming" });
    expect(state.conversations.conv1!.currentId).toBe("a1");

    state = reduceAll(state, [c1!, c2!, c3!]);
    expect(text(state, "conv1", "a1")).toBe("Hello world");

    // The stored message is the truth: here it holds a tail the chunks never carried.
    state = reduce(state, ev.end({
      turn_id: "t1",
      conversation_id: "conv1",
      message: msg("a1", "assistant", "Hello world, and more.", { parent_id: "u1", finish_reason: "stop", usage: { prompt_tokens: 4, completion_tokens: 6 } }),
    }));
    const reply = state.conversations.conv1!.messages.a1!;
    expect(reply).toMatchObject({ content: "Hello world, and more.", status: "done", finishReason: "stop" });
    expect(reply.usage?.completion_tokens).toBe(6);
    expect(runningTurn(state, "conv1")).toBeUndefined();
    expect(state.announcement).toBe("Reply complete");
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Hello world, and more."]);
  });

  it("keeps the user on another conversation when a new chat's reply arrives", () => {
    let state = reduce(initialState(), {
      type: "message_queued",
      pending: { clientId: "c1", conversationId: null, parentId: null, content: "Hi", createdAt: 1, error: null },
    });
    state = reduce(state, { type: "select", conversationId: "other" });
    state = reduceAll(state, [ev.created(view("conv1")), ...turnEvents({ clientId: "c1" })]);
    expect(state.activeId).toBe("other");
  });

  it("updates the title live, in the conversation and in the sidebar", () => {
    let state = reduceAll(initialState(), [ev.created(view("conv1")), ev.title("conv1", "Tides and moons")]);
    expect(state.conversations.conv1!.title).toBe("Tides and moons");
    expect(state.list.byId.conv1!.title).toBe("Tides and moons");
    state = reduce(state, ev.title("nope", "x"));
    expect(state.list.byId.nope).toBeUndefined();
  });
});

describe("at-least-once delivery", () => {
  it("ignores every event replayed after a resume that was already applied", () => {
    const events = [ev.created(view("conv1")), ...turnEvents({ chunks: ["a", "b", "c", "d", "e", "f"] })];
    // The socket dropped after the 5th event; the resume replays from the 3rd (overlap).
    const firstPart = events.slice(0, 5);
    const replay = events.slice(2);
    const state = reduceAll(reduceAll(initialState(), firstPart), replay);
    const once = reduceAll(initialState(), events);
    expect(state.conversations).toEqual(once.conversations);
    expect(text(state, "conv1", "a1")).toBe("abcdef");
    expect(state.lastEventId).toBe(events[events.length - 1]!.event_id);
  });

  it("drops a duplicate chunk mid-stream instead of doubling its text", () => {
    const [user, start, c1, c2] = turnEvents({ chunks: ["one ", "two"] });
    const state = reduceAll(withConversation(), [user!, start!, c1!, c1!, c2!, c1!, c2!]);
    expect(text(state, "conv1", "a1")).toBe("one two");
  });

  it("compares event ids as numbers ('999-0' is before '1000-0')", () => {
    const base = reduceAll(withConversation(), turnEvents({}).slice(0, 2));
    const late: ServerEvent = { type: "stream_chunk", event_id: "1000-0", turn_id: "t1", chunk: "x" };
    const early: ServerEvent = { type: "stream_chunk", event_id: "999-0", turn_id: "t1", chunk: "y" };
    const state = reduceAll({ ...base, lastEventId: "998-5" }, [late, early]);
    expect(text(state, "conv1", "a1")).toBe("x");
    expect(state.lastEventId).toBe("1000-0");
  });

  it("applies events without an id (a bad frame's error) every time", () => {
    const err: ServerEvent = { type: "error", code: "bad_request", message: "unknown model" };
    const state = reduceAll(withConversation(), [err, err]);
    expect(state.notices.map((t) => t.message)).toEqual(["unknown model", "unknown model"]);
  });
});

describe("stream_restart", () => {
  it("clears the partial reply, shows it is retrying, then streams the new attempt", () => {
    const [user, start, c1] = turnEvents({});
    let state = reduceAll(withConversation(), [user!, start!, c1!, ev.chunk("t1", "half a reply")]);
    state = reduce(state, ev.restart("t1"));
    expect(state.conversations.conv1!.messages.a1).toMatchObject({ content: "", status: "retrying" });
    expect(runningTurn(state, "conv1")?.status).toBe("retrying");
    state = reduceAll(state, [
      ev.start({ turn_id: "t1", conversation_id: "conv1", message_id: "a1", parent_id: "u1", model: "scripted" }),
      ev.chunk("t1", "Fresh"),
    ]);
    expect(state.conversations.conv1!.messages.a1).toMatchObject({ content: "Fresh", status: "streaming" });
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Fresh"]);
  });

  it("ignores a restart for a turn it never saw or that is over", () => {
    const events = turnEvents({});
    const done = reduceAll(withConversation(), events);
    expect(reduce(done, ev.restart("t1")).conversations).toEqual(done.conversations);
    expect(reduce(done, ev.restart("t-unknown")).conversations).toEqual(done.conversations);
  });
});

describe("errors", () => {
  it("puts a failed turn's error on its reply", () => {
    const [user, start, c1] = turnEvents({});
    const state = reduceAll(withConversation(), [
      user!, start!, c1!,
      ev.error({ code: "backend_error", message: "The model failed", turn_id: "t1", conversation_id: "conv1" }),
    ]);
    const reply = state.conversations.conv1!.messages.a1!;
    expect(reply).toMatchObject({ status: "failed", error: { code: "backend_error", message: "The model failed" } });
    expect(runningTurn(state, "conv1")).toBeUndefined();
    expect(state.notices).toEqual([]);
  });

  it("notes an error that came before any reply under the question", () => {
    const [user] = turnEvents({});
    const state = reduceAll(withConversation(), [
      user!,
      ev.error({ code: "backend_unavailable", message: "No worker", turn_id: "t1", conversation_id: "conv1" }),
    ]);
    const shown = branch(state.conversations.conv1!);
    expect(shown.map((m) => m.role)).toEqual(["user", "assistant"]);
    expect(shown[1]).toMatchObject({ localOnly: true, status: "failed", error: { code: "backend_unavailable" } });
  });

  it("marks the unsent message it belongs to (client_id), not a toast", () => {
    let state = reduce(withConversation(), {
      type: "message_queued",
      pending: { clientId: "c9", conversationId: "conv1", parentId: null, content: "x".repeat(40000), createdAt: 1, error: null },
    });
    state = reduce(state, ev.error({ code: "too_large", message: "Too long", client_id: "c9" }));
    expect(state.pending[0]!.error).toEqual({ code: "too_large", message: "Too long" });
    expect(state.notices).toEqual([]);
  });

  it("undoes a regenerate that was refused and says why", () => {
    let state = reduceAll(withConversation(), turnEvents({}));
    state = reduce(state, { type: "regenerate_requested", conversationId: "conv1", parentId: "u1" });
    expect(state.conversations.conv1!.currentId).toBe("u1");
    state = reduce(state, ev.error({ code: "rate_limited", message: "Slow down", conversation_id: "conv1" }));
    expect(state.conversations.conv1!.currentId).toBe("a1");
    expect(state.notices.map((t) => t.message)).toEqual(["Slow down"]);
  });

  it("replaces its note with the stored failed reply when one follows (error, then stream_end)", () => {
    const [user] = turnEvents({});
    const state = reduceAll(withConversation(), [
      user!,
      ev.error({ code: "backend_error", message: "Bad request upstream", turn_id: "t1", conversation_id: "conv1" }),
      ev.end({ turn_id: "t1", conversation_id: "conv1", message: msg("a1", "assistant", "", { parent_id: "u1", finish_reason: "error", error: { code: "backend_error", message: "Bad request upstream" } }) }),
    ]);
    const shown = branch(state.conversations.conv1!);
    expect(shown.map((m) => [m.id, m.status])).toEqual([["u1", "done"], ["a1", "failed"]]);
    expect(Object.keys(state.conversations.conv1!.messages).sort()).toEqual(["a1", "u1"]);
    expect(storedLeaf(state.conversations.conv1!)).toBe("a1");
  });

  it("attaches the next question under the question when the failed reply was never stored", () => {
    const [user] = turnEvents({});
    const state = reduceAll(withConversation(), [
      user!,
      ev.error({ code: "backend_unavailable", message: "No worker", turn_id: "t1", conversation_id: "conv1" }),
    ]);
    expect(storedLeaf(state.conversations.conv1!)).toBe("u1");
  });

  it("marks a stored reply that ended in error as failed", () => {
    const [user, start] = turnEvents({});
    const state = reduceAll(withConversation(), [
      user!, start!,
      ev.end({ turn_id: "t1", conversation_id: "conv1", message: msg("a1", "assistant", "", { parent_id: "u1", finish_reason: "error", error: { code: "timeout", message: "Took too long" } }) }),
    ]);
    expect(state.conversations.conv1!.messages.a1).toMatchObject({ status: "failed", error: { code: "timeout" } });
    expect(state.announcement).toBe("The reply failed");
  });
});

describe("out of order and unknown", () => {
  it("ignores chunks for unknown turns and after the end", () => {
    const ghost = ev.chunk("ghost", "boo");
    const events = turnEvents({});
    let state = reduceAll(withConversation(), [ghost, ...events]);
    state = reduce(state, ev.chunk("t1", " late"));
    expect(text(state, "conv1", "a1")).toBe("Hello world");
    expect(Object.keys(state.conversations)).toEqual(["conv1"]);
  });

  it("shows a reply whose stream_end is the only event seen", () => {
    const events = turnEvents({});
    const state = reduceAll(withConversation(), [events[0]!, events[events.length - 1]!]);
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Hello world"]);
  });

  it("keeps events for a conversation not loaded yet and merges the HTTP load into them", () => {
    const [user, start, c1] = turnEvents({ conv: "conv2" });
    let state = reduceAll(initialState(), [user!, start!, c1!]);
    expect(state.conversations.conv2!.loaded).toBe(false);
    // The server stores the reply only at the end: its view has the question only.
    state = reduce(state, {
      type: "conversation_loaded",
      conversation: view("conv2", { current_id: "u1", messages: { u1: msg("u1", "user", "Hi") } }),
    });
    expect(state.conversations.conv2!.loaded).toBe(true);
    expect(onScreen(state, "conv2")).toEqual(["user:Hi", "assistant:Hel"]);
    state = reduce(state, ev.chunk("t1", "lo"));
    expect(onScreen(state, "conv2")).toEqual(["user:Hi", "assistant:Hello"]);
  });
});

describe("page reload mid-reply", () => {
  it("restores the reply in flight, then the resume completes it with nothing lost or doubled", () => {
    const events = [ev.created(view("conv1")), ...turnEvents({ chunks: ["The ", "tide ", "turns ", "twice ", "daily."] })];
    const beforeReload = reduceAll(withConversation(), events.slice(0, 5)); // up to "tide "
    const snapshot = JSON.parse(JSON.stringify(snapshotOf(beforeReload)));

    // The new page: snapshot + HTTP view (question stored, reply not yet) + resumed events.
    let state = restoreState(snapshot, [], 0);
    state = reduce(state, { type: "select", conversationId: "conv1" });
    state = reduce(state, {
      type: "conversation_loaded",
      conversation: view("conv1", { current_id: "u1", messages: { u1: msg("u1", "user", "Hi") } }),
    });
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:The tide "]);
    expect(runningTurn(state, "conv1")?.status).toBe("streaming");

    // The server replays everything after the snapshot's event id (plus, at least once, some before).
    const resumed = events.slice(3);
    const mid = reduceAll(state, resumed.slice(0, 4));
    expect(text(mid, "conv1", "a1")).toBe("The tide turns twice ");
    state = reduceAll(mid, resumed.slice(4));
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:The tide turns twice daily."]);
    expect(runningTurn(state, "conv1")).toBeUndefined();
  });

  it("restores unsent messages from the outbox", () => {
    const state = restoreState(null, [{ type: "message", content: "queued offline", conversation_id: "conv1", client_id: "c5" }], 5000);
    expect(state.pending).toMatchObject([{ clientId: "c5", conversationId: "conv1", content: "queued offline" }]);
  });

  it("closes a turn whose reply the HTTP load shows stored (its end was missed)", () => {
    const [user, start, c1] = turnEvents({});
    let state = reduceAll(withConversation(), [user!, start!, c1!]);
    state = reduce(state, {
      type: "conversation_loaded",
      conversation: view("conv1", {
        current_id: "a1",
        messages: { u1: msg("u1", "user", "Hi"), a1: msg("a1", "assistant", "Hello world", { parent_id: "u1", finish_reason: "stop", created_at: 201 }) },
      }),
    });
    expect(runningTurn(state, "conv1")).toBeUndefined();
    expect(state.conversations.conv1!.messages.a1!.status).toBe("done");
  });
});

describe("branches", () => {
  function twoReplies(): ChatState {
    let state = reduceAll(withConversation(), turnEvents({ chunks: ["first"] }));
    state = reduce(state, { type: "regenerate_requested", conversationId: "conv1", parentId: "u1" });
    return reduceAll(state, [
      ev.start({ turn_id: "t2", conversation_id: "conv1", message_id: "a2", parent_id: "u1", model: "scripted" }),
      ev.chunk("t2", "second"),
      ev.end({ turn_id: "t2", conversation_id: "conv1", message: msg("a2", "assistant", "second", { parent_id: "u1", finish_reason: "stop", created_at: 300 }) }),
    ]);
  }

  it("shows a regenerated reply as the newest sibling and can switch back", () => {
    let state = twoReplies();
    const conv = state.conversations.conv1!;
    expect(siblingsOf(conv, conv.messages.a2!)).toEqual(["a1", "a2"]);
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:second"]);
    state = reduce(state, { type: "select_branch", conversationId: "conv1", currentId: newestLeaf(conv, "a1") });
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:first"]);
  });

  it("an edited first question is a sibling root with its own reply", () => {
    let state = twoReplies();
    state = reduceAll(state, [
      { type: "select_branch", conversationId: "conv1", currentId: null } as ChatAction,
      ...turnEvents({ turn: "t3", user: "u2", reply: "a3", question: "Hi again", chunks: ["third"] }),
    ]);
    const conv = state.conversations.conv1!;
    expect(siblingsOf(conv, conv.messages.u2!)).toEqual(["u1", "u2"]);
    expect(onScreen(state)).toEqual(["user:Hi again", "assistant:third"]);
    expect(newestLeaf(conv, "u1")).toBe("a2");
  });
});

describe("local actions", () => {
  it("removes a deleted conversation and leaves it if it was open", () => {
    let state = reduceAll(withConversation(), turnEvents({}));
    state = reduce(state, { type: "conversation_removed", conversationId: "conv1" });
    expect(state.activeId).toBeNull();
    expect(state.conversations.conv1).toBeUndefined();
    expect(state.list.byId.conv1).toBeUndefined();
  });

  it("marks a stop request until the turn ends", () => {
    let state = reduceAll(withConversation(), turnEvents({}).slice(0, 3));
    state = reduce(state, { type: "stop_requested", turnId: "t1" });
    expect(runningTurn(state, "conv1")?.status).toBe("stopping");
    state = reduce(state, ev.chunk("t1", "!"));
    expect(runningTurn(state, "conv1")?.status).toBe("stopping");
    state = reduce(state, ev.end({ turn_id: "t1", conversation_id: "conv1", message: msg("a1", "assistant", "Hel!", { parent_id: "u1", finish_reason: "stopped" }) }));
    expect(runningTurn(state, "conv1")).toBeUndefined();
    expect(state.announcement).toBe("Reply stopped");
  });

  it("keeps the newest four notices, with increasing ids", () => {
    let state = initialState();
    for (let i = 0; i < 6; i++) state = reduce(state, { type: "error", code: "bad_request", message: `e${i}` });
    expect(state.notices.map((t) => t.message)).toEqual(["e2", "e3", "e4", "e5"]);
    expect(state.notices.map((t) => t.id)).toEqual([3, 4, 5, 6]);
  });
});

describe("the user's other tabs (feed and followed turns)", () => {
  it("lists a chat made elsewhere without taking its messages, and moves a chat up when a turn starts", () => {
    let state = withConversation();
    state = reduce(state, { ...ev.created(view("conv9", { title: "Elsewhere" })), event_id: undefined, feed_id: "5-0" } as ServerEvent);
    expect(state.list.byId.conv9?.title).toBe("Elsewhere");
    expect(state.conversations.conv9).toBeUndefined(); // loaded when opened
    state = reduce(state, { type: "turn_started", feed_id: "5-1", turn_id: "t9", conversation_id: "conv9", title: "Renamed", updated_at: 150 });
    expect(state.list.byId.conv9).toMatchObject({ title: "Renamed", updated_at: 150 });
    // A feed event is not a session event: the resume point stays.
    expect(state.lastEventId).toBeNull();
  });

  it("shows a turn followed from another tab like its own, from its first event", () => {
    let state = withConversation();
    const followed = turnEvents({}).map((e) => ({ ...e, event_id: undefined }) as ServerEvent);
    state = reduceAll(state, followed.slice(0, -1));
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Hello world"]);
    expect(runningTurn(state, "conv1")?.status).toBe("streaming");
    state = reduce(state, followed[followed.length - 1]!);
    expect(runningTurn(state, "conv1")).toBeUndefined();
    expect(state.lastEventId).toBeNull();
  });

  it("follows another tab's regeneration onto its new branch", () => {
    let state = reduceAll(withConversation(), turnEvents({}));
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Hello world"]);
    const again = turnEvents({ turn: "t2", reply: "a2", chunks: ["Other"] })
      .slice(1)
      .map((e) => ({ ...e, event_id: undefined }) as ServerEvent);
    state = reduceAll(state, again);
    expect(onScreen(state)).toEqual(["user:Hi", "assistant:Other"]);
    const conv = state.conversations.conv1!;
    expect(siblingsOf(conv, conv.messages.a2!)).toEqual(["a1", "a2"]);
  });

  it("leaves a conversation deleted elsewhere and says so", () => {
    let state = withConversation();
    state = reduce(state, { type: "conversation_deleted", feed_id: "6-0", conversation_id: "conv1" });
    expect(state.activeId).toBeNull();
    expect(state.conversations.conv1).toBeUndefined();
    expect(state.notices.map((n) => n.message)).toEqual(["This conversation was deleted in another tab or device."]);
  });

  it("ignores an event type it does not know (a newer server) instead of losing its state", () => {
    const state = withConversation();
    expect(reduce(state, { type: "from_the_future" } as unknown as ChatAction)).toBe(state);
  });
});
