import { beforeEach, describe, expect, it } from "vitest";
import type { ServerEvent } from "../../protocol.gen";
import { initialState, reduceAll } from "../reducer";
import type { ChatState } from "../types";
import { ev, msg, nextId, resetIds, turnEvents, view } from "./fixtures";

beforeEach(resetIds);

const id = nextId;
const call = (step: number, call_id: string, tool = "add"): ServerEvent => ({
  type: "tool_call", event_id: id(), turn_id: "t1", step, call_id, server: "calc", tool, arguments: "{}",
});
const result = (step: number, call_id: string, preview: string): ServerEvent => ({
  type: "tool_result", event_id: id(), turn_id: "t1", step, call_id, status: "ok", preview, duration_ms: 5,
});
const ask = (step: number, call_id: string): ServerEvent => ({
  type: "approval_required", event_id: id(), turn_id: "t1", step, call_id, server: "calc", tool: "slow",
  arguments: "{}", timeout_seconds: 300,
});

function started(): ChatState {
  const [user, start] = turnEvents({});
  return reduceAll(initialState(), [
    { type: "select", conversationId: "conv1" },
    { type: "conversation_loaded", conversation: view("conv1") },
    user!,
    start!,
  ]);
}
const tools = (state: ChatState) => state.conversations.conv1!.messages.a1!.tools;

describe("a reply's tool calls", () => {
  it("follow the live events, an approval, and a takeover's replay, by call id", () => {
    let state = reduceAll(started(), [call(0, "c1"), call(0, "c2"), result(0, "c1", "3")]);
    expect(tools(state).map((t) => [t.callId, t.status, t.preview])).toEqual([
      ["c1", "ok", "3"],
      ["c2", "running", ""],
    ]);
    state = reduceAll(state, [ask(0, "c2")]);
    expect(tools(state)[1]).toMatchObject({ status: "waiting", turnId: "t1" });
    // A takeover: stream_restart, then the recorded calls again: no duplicates.
    state = reduceAll(state, [ev.restart("t1"), call(0, "c1"), result(0, "c1", "3"), call(0, "c2"), result(0, "c2", "slept")]);
    expect(tools(state).map((t) => [t.callId, t.status, t.preview])).toEqual([
      ["c1", "ok", "3"],
      ["c2", "ok", "slept"],
    ]);
  });

  it("come from the stored steps at stream_end", () => {
    const before = started();
    const end = ev.end({
      turn_id: "t1",
      conversation_id: "conv1",
      message: msg("a1", "assistant", "answer", {
        parent_id: "u1",
        finish_reason: "stop",
        steps: [{ text: "", calls: [{ id: "c1", server: "calc", tool: "add", arguments: "{}", status: "ok", result: "3", duration_ms: 7 }] }],
      }),
    });
    const state = reduceAll(before, [end]);
    expect(tools(state)).toEqual([
      { callId: "c1", step: 0, server: "calc", tool: "add", arguments: "{}", status: "ok", preview: "3", durationMs: 7, turnId: null },
    ]);
  });
});
