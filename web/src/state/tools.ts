/**
 * Tools (issue 15): a reply's tool calls as the client shows them, from the
 * stored `steps` and, while the turn runs, from `tool_call`,
 * `approval_required` and `tool_result` events (a takeover replays them:
 * each call is updated in place by its id). The stored steps' views:
 * `toolSteps.ts`.
 */
import type { ApprovalRequiredEvent, ToolCallEvent, ToolResultEvent } from "../protocol.gen";
import { updateMessage } from "./conversation";
import { withConversation } from "./stateHelpers";
import type { ChatState, ToolView } from "./types";

type ToolEvent = ToolCallEvent | ApprovalRequiredEvent | ToolResultEvent;

function upsert(tools: ToolView[], callId: string, change: (t: ToolView | undefined) => ToolView): ToolView[] {
  const index = tools.findIndex((t) => t.callId === callId);
  if (index < 0) return [...tools, change(undefined)];
  return tools.map((t, i) => (i === index ? change(t) : t));
}

type Asked = Pick<ToolView, "callId" | "step" | "server" | "tool" | "arguments" | "turnId">;

/** What `tool_call` and `approval_required` both say of a call. */
function asked(event: ToolCallEvent | ApprovalRequiredEvent): Asked {
  const { call_id: callId, step, server, tool, arguments: args, turn_id: turnId } = event;
  return { callId, step, server, tool, arguments: args, turnId };
}

function apply(tools: ToolView[], event: ToolEvent): ToolView[] {
  switch (event.type) {
    case "tool_call":
      return upsert(tools, event.call_id, (t) => ({
        ...asked(event),
        status: t?.status ?? "running",
        preview: t?.preview ?? "",
        durationMs: t?.durationMs ?? null,
      }));
    case "approval_required":
      return upsert(tools, event.call_id, (t) => ({
        ...asked(event),
        preview: "",
        durationMs: null,
        ...t,
        status: "waiting",
        turnId: event.turn_id,
      }));
    case "tool_result":
      return upsert(tools, event.call_id, (t) => ({
        callId: event.call_id,
        step: event.step,
        server: t?.server ?? "",
        tool: t?.tool ?? "",
        arguments: t?.arguments ?? "",
        status: event.status,
        preview: event.preview,
        durationMs: event.duration_ms,
        turnId: event.turn_id,
      }));
  }
}

export function onToolEvent(state: ChatState, event: ToolEvent): ChatState {
  const turn = state.turns[event.turn_id];
  if (!turn?.messageId) return state;
  const conv = state.conversations[turn.conversationId];
  if (!conv?.messages[turn.messageId]) return state;
  return withConversation(
    state,
    updateMessage(conv, turn.messageId, (m) => ({ ...m, tools: apply(m.tools, event) })),
  );
}
