/** Builders for server events as the gateway sends them, for reducer and connection tests. */
import type { ConversationView, Message, ServerEvent } from "../../protocol.gen";

let seq = 0;
/** Consecutive stream ids in one millisecond, then the next: exercises numeric comparison. */
export function nextId(): string {
  seq += 1;
  return `1700000000${String(Math.floor(seq / 5)).padStart(3, "0")}-${seq % 5}`;
}

export function resetIds(): void {
  seq = 0;
}

export function view(id = "conv1", over: Partial<ConversationView> = {}): ConversationView {
  return { id, title: "New chat", model: "scripted", created_at: 100, updated_at: 100, system_prompt: "", current_id: null, messages: {}, ...over };
}

export function msg(id: string, role: Message["role"], content: string, over: Partial<Message> = {}): Message {
  return { id, parent_id: null, children: [], role, content, model: null, finish_reason: null, usage: null, created_at: 200, ...over };
}

type Ev<T extends ServerEvent["type"]> = Omit<Extract<ServerEvent, { type: T }>, "type" | "event_id">;

export const ev = {
  created: (conversation: ConversationView): ServerEvent => ({ type: "conversation_created", event_id: nextId(), conversation }),
  user: (e: Ev<"user_message">): ServerEvent => ({ type: "user_message", event_id: nextId(), ...e }),
  start: (e: Ev<"stream_start">): ServerEvent => ({ type: "stream_start", event_id: nextId(), ...e }),
  chunk: (turn_id: string, chunk: string): ServerEvent => ({ type: "stream_chunk", event_id: nextId(), turn_id, chunk }),
  restart: (turn_id: string, reason = "worker took over"): ServerEvent => ({ type: "stream_restart", event_id: nextId(), turn_id, reason }),
  end: (e: Ev<"stream_end">): ServerEvent => ({ type: "stream_end", event_id: nextId(), ...e }),
  title: (conversation_id: string, title: string): ServerEvent => ({ type: "title", event_id: nextId(), conversation_id, title }),
  error: (e: Ev<"error">): ServerEvent => ({ type: "error", event_id: nextId(), ...e }),
};

/** A whole turn: the question, a reply in `chunks`, and its stored end. */
export function turnEvents(opts: {
  conv?: string;
  turn?: string;
  user?: string;
  reply?: string;
  parent?: string | null;
  clientId?: string;
  chunks?: string[];
  question?: string;
}): ServerEvent[] {
  const conv = opts.conv ?? "conv1";
  const turn = opts.turn ?? "t1";
  const user = opts.user ?? "u1";
  const reply = opts.reply ?? "a1";
  const chunks = opts.chunks ?? ["Hel", "lo ", "world"];
  return [
    ev.user({ conversation_id: conv, message: msg(user, "user", opts.question ?? "Hi", { parent_id: opts.parent ?? null }), client_id: opts.clientId ?? null, turn_id: turn }),
    ev.start({ turn_id: turn, conversation_id: conv, message_id: reply, parent_id: user, model: "scripted" }),
    ...chunks.map((c) => ev.chunk(turn, c)),
    ev.end({
      turn_id: turn,
      conversation_id: conv,
      message: msg(reply, "assistant", chunks.join(""), { parent_id: user, finish_reason: "stop", created_at: 201, usage: { prompt_tokens: 5, completion_tokens: 3 } }),
    }),
  ];
}
