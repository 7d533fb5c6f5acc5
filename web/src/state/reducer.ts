/**
 * The one reducer of chat state. Live events, events replayed after a resume
 * and events replayed after a page reload all go through `reduce`, so there is
 * one code path to get right and to test (see reducer.test.ts).
 *
 * Delivery is at least once: an event whose `event_id` is at or before the
 * last applied one is a duplicate and leaves the state untouched. Events for
 * turns the client does not know (a chunk before its `stream_start`, a chunk
 * after `stream_end`) are ignored; `stream_end` carries the stored message,
 * which is the truth whatever chunks were seen.
 */
import {
  SERVER_EVENT_TYPES,
  type ErrorEvent,
  type ServerEvent,
  type StreamEndEvent,
  type StreamStartEvent,
  type UserMessageEvent,
} from "../protocol.gen";
import { dropMessage, emptyConversation, mergeView, placeholderTime, putMessage, updateMessage } from "./conversation";
import { isAlreadyApplied, isEventId } from "./eventId";
import { applyLocal, LOCAL_ACTIONS, type LocalAction } from "./localActions";
import {
  addNotice,
  bumpSummary,
  isRunning,
  localErrorId,
  summaryOf,
  withConversation,
  withSummary,
} from "./stateHelpers";
import { onToolEvent } from "./tools";
import { normalizeMessage } from "./tree";
import type { ChatConversation, ChatState, Turn } from "./types";

export { isRunning };
export type { LocalAction };

export type ChatAction = ServerEvent | LocalAction;

const SERVER_EVENTS: ReadonlySet<string> = new Set(SERVER_EVENT_TYPES);

export function isServerEvent(action: ChatAction): action is ServerEvent {
  return SERVER_EVENTS.has(action.type);
}

export function initialState(partial: Partial<ChatState> = {}): ChatState {
  return {
    lastEventId: null,
    conversations: {},
    turns: {},
    pending: [],
    list: { byId: {}, nextCursor: null, status: "idle" },
    activeId: null,
    awaitingReply: {},
    announcement: "",
    draft: null,
    notices: [],
    nextNoticeId: 1,
    ...partial,
  };
}

export function reduce(state: ChatState, action: ChatAction): ChatState {
  if (action.type === "server_events") return reduceAll(state, action.events);
  if (!isServerEvent(action)) {
    return LOCAL_ACTIONS.has(action.type) ? applyLocal(state, action as Exclude<LocalAction, { type: "server_events" }>) : state;
  }
  const eventId = action.event_id;
  if (isEventId(eventId)) {
    if (isAlreadyApplied(eventId, state.lastEventId)) return state;
    return { ...applyEvent(state, action), lastEventId: eventId };
  }
  return applyEvent(state, action);
}

/** Apply a batch in order (a resume replay, or a test's array of events). */
export function reduceAll(state: ChatState, actions: readonly ChatAction[]): ChatState {
  return actions.reduce(reduce, state);
}

function applyEvent(state: ChatState, event: ServerEvent): ChatState {
  switch (event.type) {
    case "hello":
    case "pong":
      return state;
    // Tools (issue 15): the reply's step list, live (state/tools.ts).
    case "tool_call":
    case "approval_required":
    case "tool_result":
      return onToolEvent(state, event);
    case "conversation_created": {
      const view = event.conversation;
      // From the feed (another tab made it): list it; its messages load when it is opened.
      if (event.feed_id) return { ...state, list: withSummary(state.list, state.list.byId[view.id] ?? summaryOf(view)) };
      const conversations = {
        ...state.conversations,
        [view.id]: mergeView(state.conversations[view.id], view),
      };
      return { ...state, conversations, list: withSummary(state.list, summaryOf(view)) };
    }
    case "user_message":
      return onUserMessage(state, event);
    case "stream_start":
      return onStreamStart(state, event);
    case "stream_chunk": {
      const turn = state.turns[event.turn_id];
      if (!turn || !turn.messageId || !isRunning(turn)) return state;
      const conv = state.conversations[turn.conversationId];
      if (!conv?.messages[turn.messageId]) return state;
      const next = updateMessage(conv, turn.messageId, (m) => ({
        ...m,
        content: m.content + event.chunk,
        status: "streaming",
      }));
      const status = turn.status === "stopping" ? "stopping" : "streaming";
      return {
        ...withConversation(state, next),
        turns: turn.status === status ? state.turns : { ...state.turns, [turn.turnId]: { ...turn, status } },
      };
    }
    case "stream_restart": {
      const turn = state.turns[event.turn_id];
      if (!turn || !isRunning(turn)) return state;
      const conv = state.conversations[turn.conversationId];
      let next = state;
      if (conv && turn.messageId) {
        next = withConversation(
          state,
          updateMessage(conv, turn.messageId, (m) => ({ ...m, content: "", status: "retrying" })),
        );
      }
      return {
        ...next,
        turns: { ...state.turns, [turn.turnId]: { ...turn, status: "retrying" } },
        announcement: "The reply is being retried",
      };
    }
    case "stream_end":
      return onStreamEnd(state, event);
    case "title": {
      const conv = state.conversations[event.conversation_id];
      const summary = state.list.byId[event.conversation_id];
      return {
        ...(conv ? withConversation(state, { ...conv, title: event.title }) : state),
        list: summary ? withSummary(state.list, { ...summary, title: event.title }) : state.list,
      };
    }
    case "conversation_deleted": {
      if (!state.conversations[event.conversation_id] && !state.list.byId[event.conversation_id]) return state;
      const wasOpen = state.activeId === event.conversation_id;
      const next = applyLocal(state, { type: "conversation_removed", conversationId: event.conversation_id });
      return wasOpen ? addNotice(next, "This conversation was deleted in another tab or device.") : next;
    }
    case "turn_started": {
      const known = state.list.byId[event.conversation_id];
      const summary = known
        ? { ...known, title: event.title, updated_at: Math.max(known.updated_at, event.updated_at) }
        : {
            id: event.conversation_id,
            title: event.title,
            model: event.model ?? null,
            created_at: event.updated_at,
            updated_at: event.updated_at,
          };
      return { ...state, list: withSummary(state.list, summary) };
    }
    case "error":
      return onError(state, event);
  }
}

function onUserMessage(state: ChatState, event: UserMessageEvent): ChatState {
  const conv = state.conversations[event.conversation_id] ?? emptyConversation(event.conversation_id);
  const message = normalizeMessage(event.message, conv.messages[event.message.id]);
  const next: ChatConversation = {
    ...putMessage(conv, message),
    currentId: message.id,
    updatedAt: Math.max(conv.updatedAt, message.createdAt),
  };
  const pending = event.client_id ? state.pending.find((p) => p.clientId === event.client_id) : undefined;
  let turns = state.turns;
  if (event.turn_id && !state.turns[event.turn_id]) {
    turns = {
      ...turns,
      [event.turn_id]: {
        turnId: event.turn_id,
        conversationId: event.conversation_id,
        parentId: message.id,
        messageId: null,
        status: "queued",
      },
    };
  }
  return {
    ...withConversation(state, next),
    turns,
    pending: pending ? state.pending.filter((p) => p !== pending) : state.pending,
    // The first message of a new chat: follow it to its conversation if the user is still there.
    activeId:
      pending && pending.conversationId === null && state.activeId === null
        ? event.conversation_id
        : state.activeId,
    list: bumpSummary(state.list, event.conversation_id, message.createdAt),
  };
}

function onStreamStart(state: ChatState, event: StreamStartEvent): ChatState {
  const known = state.turns[event.turn_id];
  if (known && !isRunning(known)) return state;
  let conv = state.conversations[event.conversation_id] ?? emptyConversation(event.conversation_id);
  if (known?.messageId && known.messageId !== event.message_id) {
    conv = dropMessage(conv, known.messageId);
  }
  const existing = conv.messages[event.message_id];
  conv = putMessage(conv, {
    id: event.message_id,
    parentId: event.parent_id,
    children: existing?.children ?? [],
    role: "assistant",
    // A second stream_start for the same turn is a new attempt: start over.
    content: "",
    model: event.model,
    finishReason: null,
    usage: null,
    createdAt: existing?.createdAt ?? placeholderTime(conv, event.parent_id),
    error: null,
    notice: null,
    status: "streaming",
    turnId: event.turn_id,
    localOnly: false,
    tools: [],
  });
  // A turn another tab runs (followed: no event_id) is followed onto its branch
  // too, so a regeneration there shows here as it does there.
  const followed = !isEventId(event.event_id);
  if (followed || conv.currentId === event.parent_id || conv.currentId === null) {
    conv = { ...conv, currentId: event.message_id };
  }
  const turn: Turn = {
    turnId: event.turn_id,
    conversationId: event.conversation_id,
    parentId: event.parent_id,
    messageId: event.message_id,
    status: known?.status === "stopping" ? "stopping" : "streaming",
  };
  const awaitingReply = { ...state.awaitingReply };
  delete awaitingReply[event.conversation_id];
  return {
    ...withConversation(state, conv),
    turns: { ...state.turns, [turn.turnId]: turn },
    awaitingReply,
    announcement: "The assistant is replying",
  };
}

function onStreamEnd(state: ChatState, event: StreamEndEvent): ChatState {
  const turn = state.turns[event.turn_id];
  let conv = state.conversations[event.conversation_id] ?? emptyConversation(event.conversation_id);
  const placeholderId = turn?.messageId ?? null;
  // An error before the reply existed left a note; the stored (failed) reply replaces it.
  const noteId = localErrorId(event.turn_id);
  const wasCurrent =
    conv.currentId === null ||
    conv.currentId === event.message.id ||
    conv.currentId === event.message.parent_id ||
    conv.currentId === noteId ||
    (placeholderId !== null && conv.currentId === placeholderId);
  if (placeholderId && placeholderId !== event.message.id) conv = dropMessage(conv, placeholderId);
  if (conv.messages[noteId]) conv = dropMessage(conv, noteId);
  const message = normalizeMessage(event.message, conv.messages[event.message.id]);
  conv = putMessage(conv, message);
  conv = {
    ...conv,
    currentId: wasCurrent ? message.id : conv.currentId,
    updatedAt: Math.max(conv.updatedAt, message.createdAt),
  };
  const failed = message.status === "failed";
  const awaitingReply = { ...state.awaitingReply };
  delete awaitingReply[event.conversation_id];
  return {
    ...withConversation(state, conv),
    turns: {
      ...state.turns,
      [event.turn_id]: {
        turnId: event.turn_id,
        conversationId: event.conversation_id,
        parentId: message.parentId,
        messageId: message.id,
        status: failed ? "failed" : "done",
      },
    },
    awaitingReply,
    list: bumpSummary(state.list, event.conversation_id, message.createdAt),
    announcement: failed
      ? "The reply failed"
      : message.finishReason === "stopped"
        ? "Reply stopped"
        : "Reply complete",
  };
}

function onError(state: ChatState, event: ErrorEvent): ChatState {
  const error = { code: event.code, message: event.message };
  const pending = event.client_id ? state.pending.find((p) => p.clientId === event.client_id) : undefined;
  if (pending) {
    return {
      ...state,
      pending: state.pending.map((p) => (p === pending ? { ...p, error } : p)),
      announcement: `Message not sent: ${event.message}`,
    };
  }
  const turn = event.turn_id ? state.turns[event.turn_id] : undefined;
  if (turn) {
    let conv = state.conversations[turn.conversationId] ?? emptyConversation(turn.conversationId);
    if (turn.messageId && conv.messages[turn.messageId]) {
      conv = updateMessage(conv, turn.messageId, (m) => ({
        ...m,
        error,
        status: "failed",
        finishReason: "error",
      }));
    } else {
      // The turn failed before a reply existed: note the error under the question.
      const id = localErrorId(turn.turnId);
      conv = putMessage(conv, {
        id,
        parentId: turn.parentId,
        children: [],
        role: "assistant",
        content: "",
        model: null,
        finishReason: "error",
        usage: null,
        createdAt: placeholderTime(conv, turn.parentId),
        error,
        notice: null,
        status: "failed",
        turnId: null,
        localOnly: true,
        tools: [],
      });
      if (conv.currentId === turn.parentId) conv = { ...conv, currentId: id };
    }
    return {
      ...withConversation(state, conv),
      turns: { ...state.turns, [turn.turnId]: { ...turn, status: "failed" } },
      announcement: `The reply failed: ${event.message}`,
    };
  }
  // Nothing on screen to attach it to: undo a regenerate that never started, and tell the user.
  let next = state;
  const awaiting = event.conversation_id
    ? { [event.conversation_id]: state.awaitingReply[event.conversation_id] }
    : state.awaitingReply;
  for (const [cid, wait] of Object.entries(awaiting)) {
    const conv = next.conversations[cid];
    if (wait && conv) next = withConversation(next, { ...conv, currentId: wait.previousCurrentId });
  }
  const awaitingReply = { ...state.awaitingReply };
  for (const cid of Object.keys(awaiting)) delete awaitingReply[cid];
  return addNotice({ ...next, awaitingReply }, event.message);
}

