/**
 * Frames waiting to reach the server, in the order the user made them.
 *
 * A frame with a `client_id` (message, edit) stays until the server
 * acknowledges it with a `user_message` or an `error` echoing that id, so a
 * socket that dies right after `send` loses nothing: the frame goes again on
 * the next connection unless the replay acknowledged it first. Other frames
 * (regenerate, stop) leave once written to an open socket. The queue is kept
 * in sessionStorage so a reload keeps what was typed offline.
 */
import type { ApproveFrame, EditFrame, MessageFrame, RegenerateFrame, StopFrame } from "../protocol.gen";
import { readJson, safeRemove, safeSet } from "./session";

export type QueuedFrame = MessageFrame | EditFrame | RegenerateFrame | StopFrame | ApproveFrame;

export interface OutboxItem {
  frame: QueuedFrame;
  /** When it was last written to a socket (ms since epoch); null: never. */
  sentAt: number | null;
  /** Which socket it was written to (see `takeSendable`). */
  sentOn: string | null;
}

function clientIdOf(frame: QueuedFrame): string | null {
  return "client_id" in frame && typeof frame.client_id === "string" ? frame.client_id : null;
}

export class Outbox {
  private items: OutboxItem[];

  constructor(
    private readonly storage: Storage | null = null,
    private readonly key = "tidechat:outbox",
  ) {
    this.items = storage ? Outbox.load(storage, key) : [];
  }

  private static load(storage: Storage, key: string): OutboxItem[] {
    const data = readJson(storage, key);
    if (!Array.isArray(data)) return [];
    return data.filter(
      (item): item is OutboxItem =>
        typeof item === "object" && item !== null && typeof (item as OutboxItem).frame?.type === "string",
    ).map((item) => ({ frame: item.frame, sentAt: item.sentAt ?? null, sentOn: item.sentOn ?? null }));
  }

  get size(): number {
    return this.items.length;
  }

  list(): readonly OutboxItem[] {
    return this.items;
  }

  push(frame: QueuedFrame): void {
    this.items = [...this.items, { frame, sentAt: null, sentOn: null }];
    this.save();
  }

  /**
   * The frames to write now on socket `socketId`, oldest first, marking them
   * sent. A frame already written on this socket is not written again. One
   * written on an earlier socket goes again only once `resendAfterMs` has
   * passed without an acknowledgement (the resumed replay normally brings the
   * acknowledgement first), and frames behind it wait, to keep the order.
   */
  takeSendable(socketId: string, now: number, resendAfterMs: number): QueuedFrame[] {
    const out: QueuedFrame[] = [];
    const keep: OutboxItem[] = [];
    let blocked = false;
    for (const item of this.items) {
      if (blocked || item.sentOn === socketId) {
        keep.push(item);
        continue;
      }
      if (item.sentOn !== null && item.sentAt !== null && now - item.sentAt < resendAfterMs) {
        blocked = true;
        keep.push(item);
        continue;
      }
      out.push(item.frame);
      if (clientIdOf(item.frame) !== null) keep.push({ ...item, sentAt: now, sentOn: socketId });
    }
    this.items = keep;
    this.save();
    return out;
  }

  /** When the next frame written on an earlier socket may go again (ms since epoch), if any waits. */
  nextResendAt(socketId: string, resendAfterMs: number): number | null {
    for (const item of this.items) {
      if (item.sentOn !== null && item.sentOn !== socketId && item.sentAt !== null) {
        return item.sentAt + resendAfterMs;
      }
    }
    return null;
  }

  /** The server answered the frame with this client id: it is delivered (or rejected). */
  /** Client ids of frames never written to any socket: the server cannot have them. */
  unsentClientIds(): Set<string> {
    const ids = new Set<string>();
    for (const item of this.items) {
      const id = clientIdOf(item.frame);
      if (id !== null && item.sentOn === null) ids.add(id);
    }
    return ids;
  }

  ack(clientId: string): boolean {
    const before = this.items.length;
    this.items = this.items.filter((item) => clientIdOf(item.frame) !== clientId);
    if (this.items.length === before) return false;
    this.save();
    return true;
  }

  /** Forget a frame the user discarded before it was sent. */
  remove(clientId: string): void {
    this.ack(clientId);
  }

  clear(): void {
    this.items = [];
    if (this.storage) safeRemove(this.storage, this.key);
  }

  private save(): void {
    if (!this.storage) return;
    if (this.items.length === 0) safeRemove(this.storage, this.key);
    else safeSet(this.storage, this.key, JSON.stringify(this.items));
  }
}
