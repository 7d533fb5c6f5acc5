/**
 * The tab's WebSocket to the gateway: connect, resume, keep alive, reconnect.
 *
 * Protocol (DESIGN.md): the server greets with `hello`; a socket on a session
 * that already has events gets none until its first frame, and `resume
 * {after}` as that first frame replays everything after the last applied
 * event. With nothing applied yet a `ping` goes first instead, which starts
 * delivery at the live end. Only after `hello` is the outbox flushed, so a
 * frame never races the resume.
 *
 * Live sync: the user's feed (sidebar changes, turns started elsewhere)
 * resumes after the last `feed_id` seen, and after every (re)connect a
 * `watch` names the conversation on screen, so turns the user's other tabs
 * run in it are delivered here too (from their start).
 *
 * No React in here: `useChatSocket` wires it to the reducer, and the tests
 * drive it with a fake socket and fake timers.
 */
import type { ClientFrame, ServerEvent } from "../protocol.gen";
import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF } from "./backoff";
import type { Outbox, QueuedFrame } from "./outbox";

export type ConnectionStatus =
  | { state: "connecting"; attempt: number }
  | { state: "connected" }
  | { state: "reconnecting"; attempt: number; retryAt: number }
  | { state: "offline" }
  | { state: "closed" };

/** The part of the browser's WebSocket this module uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export interface ConnectionOptions {
  /** The socket URL (`/ws`). */
  url: string;
  /** Subprotocols to offer, read at each connect (they carry the session id, which may change). */
  protocols?: () => string[];
  outbox: Outbox;
  /** The newest event the reducer has applied: where a resume starts. */
  lastEventId: () => string | null;
  /** The newest user-feed event seen on this page: where the feed resumes. */
  lastFeedId?: () => string | null;
  /** The conversation on screen (null: none), told to each new socket. */
  watching?: () => string | null;
  onEvent: (event: ServerEvent) => void;
  onStatus: (status: ConnectionStatus) => void;
  /** A socket closed before `hello` (maybe the session cookie expired), or at any time with 4401 (signed out). */
  onConnectFailed?: (closeCode: number) => void;
  /** After the first successful connection, each later one (the caller may refetch). */
  onReconnected?: () => void;
  createSocket?: (url: string, protocols: string[]) => SocketLike;
  isOnline?: () => boolean;
  random?: () => number;
  now?: () => number;
  pingIntervalMs?: number;
  /** With no frame at all this long after a ping, the socket is taken for dead. */
  pongTimeoutMs?: number;
  /** How long a frame sent on a lost socket waits for its acknowledgement in the replay. */
  resendAfterMs?: number;
  backoff?: BackoffOptions;
}

const OPEN = 1;
/** The server's close code for "not signed in" (also: signed out while connected). */
export const CLOSE_SIGNED_OUT = 4401;
/** The server's close code for "this session id belongs to another user". */
export const CLOSE_NOT_YOUR_SESSION = 4403;

export class ChatConnection {
  private socket: SocketLike | null = null;
  private socketId = "";
  private sockets = 0;
  private greeted = false;
  private everConnected = false;
  private attempt = 0;
  private stopped = true;
  private status: ConnectionStatus = { state: "closed" };
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private resendTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ConnectionOptions) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  get currentStatus(): ConnectionStatus {
    return this.status;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Close for good (log-out, unmount). The outbox is kept. */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.detach(1000, "client closed");
    this.setStatus({ state: "closed" });
  }

  /** Queue a frame; it is written at once when connected, else after the next `hello`. */
  send(frame: QueuedFrame): void {
    this.options.outbox.push(frame);
    if (this.greeted) this.flush();
  }

  /** The conversation on screen changed: tell the open socket (a new one is told on open). */
  watch(conversationId: string | null): void {
    if (this.socket && this.socket.readyState === OPEN) this.write({ type: "watch", conversation_id: conversationId });
  }

  /** Skip the wait (a "Retry now" button, the browser coming back online). */
  reconnectNow(): void {
    if (this.stopped || this.greeted) return;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.detach(4000, "reconnecting");
    this.connect();
  }

  /** The browser says the network is gone: stop retrying until it is back. */
  wentOffline(): void {
    if (this.stopped) return;
    this.clearTimers();
    this.detach(4000, "offline");
    this.setStatus({ state: "offline" });
  }

  private connect(): void {
    if (this.options.isOnline && !this.options.isOnline()) {
      this.setStatus({ state: "offline" });
      return;
    }
    this.greeted = false;
    this.sockets += 1;
    this.socketId = `${this.now.toString(36)}.${this.sockets}`;
    this.setStatus({ state: "connecting", attempt: this.attempt });
    const create = this.options.createSocket ?? ((url: string, protocols: string[]) => new WebSocket(url, protocols));
    let socket: SocketLike;
    try {
      socket = create(this.options.url, this.options.protocols?.() ?? []);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      const after = this.options.lastEventId();
      const feedAfter = this.options.lastFeedId?.() ?? null;
      this.write(after ? { type: "resume", after, ...(feedAfter ? { feed_after: feedAfter } : {}) } : { type: "ping" });
      if (this.options.watching) this.write({ type: "watch", conversation_id: this.options.watching() });
    };
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onerror = () => {
      // onclose follows and does the work.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.greeted || ev.code === CLOSE_SIGNED_OUT) this.options.onConnectFailed?.(ev.code);
      this.greeted = false;
      this.clearTimers();
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    let event: ServerEvent;
    try {
      event = JSON.parse(data) as ServerEvent;
    } catch {
      return;
    }
    if (typeof event !== "object" || event === null || typeof event.type !== "string") return;
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    if (event.type === "hello") this.onHello();
    if ((event.type === "user_message" || event.type === "error") && event.client_id) {
      this.options.outbox.ack(event.client_id);
    }
    this.options.onEvent(event);
  }

  private onHello(): void {
    this.greeted = true;
    this.attempt = 0;
    this.setStatus({ state: "connected" });
    if (this.everConnected) this.options.onReconnected?.();
    this.everConnected = true;
    this.startPing();
    this.flush();
  }

  private flush(): void {
    if (!this.greeted || !this.socket || this.socket.readyState !== OPEN) return;
    const resendAfter = this.options.resendAfterMs ?? 3000;
    for (const frame of this.options.outbox.takeSendable(this.socketId, this.now, resendAfter)) {
      this.write(frame);
    }
    if (this.resendTimer !== null) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    const at = this.options.outbox.nextResendAt(this.socketId, resendAfter);
    if (at !== null) {
      this.resendTimer = setTimeout(() => {
        this.resendTimer = null;
        this.flush();
      }, Math.max(0, at - this.now));
    }
  }

  private write(frame: ClientFrame): void {
    this.socket?.send(JSON.stringify(frame));
  }

  private startPing(): void {
    const interval = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = setInterval(() => {
      this.write({ type: "ping" });
      if (this.pongTimer === null) {
        this.pongTimer = setTimeout(() => {
          // A half-open TCP connection can take minutes to report close; do not wait for it.
          this.pongTimer = null;
          this.clearTimers();
          this.detach(4000, "no pong");
          this.greeted = false;
          this.scheduleReconnect();
        }, this.options.pongTimeoutMs ?? 10_000);
      }
    }, interval);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    if (this.options.isOnline && !this.options.isOnline()) {
      this.setStatus({ state: "offline" });
      return;
    }
    const delay = backoffDelay(this.attempt, this.options.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt += 1;
    this.setStatus({ state: "reconnecting", attempt: this.attempt, retryAt: this.now + delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private detach(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    this.greeted = false;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.pongTimer, this.resendTimer]) if (t !== null) clearTimeout(t);
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.reconnectTimer = this.pingTimer = this.pongTimer = this.resendTimer = null;
  }

  private setStatus(status: ConnectionStatus): void {
    this.status = status;
    this.options.onStatus(status);
  }
}
