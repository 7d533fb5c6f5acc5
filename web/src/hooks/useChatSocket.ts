import { useCallback, useEffect, useRef, useState, type Dispatch } from "react";
import { socketProtocols, socketUrl } from "../api/client";
import type { ServerEvent } from "../protocol.gen";
import { CLOSE_NOT_YOUR_SESSION, CLOSE_SIGNED_OUT, ChatConnection, type ConnectionStatus } from "../net/connection";
import { compareEventIds, isEventId } from "../state/eventId";
import type { Outbox, QueuedFrame } from "../net/outbox";
import type { ChatAction } from "../state/reducer";
import { sessionId, STORAGE_KEYS, safeRemove } from "../net/session";

export interface ChatSocketOptions {
  /** Connect only once the first HTTP load is in, so a resume lands on loaded state. */
  enabled: boolean;
  dispatch: Dispatch<ChatAction>;
  outbox: Outbox;
  /** The reducer's last applied event id when the page loaded (restored from sessionStorage). */
  initialLastEventId: string | null;
  onConnectFailed: () => void;
  onReconnected: () => void;
  /** The conversation on screen: its turns run by the user's other tabs come here too. */
  watching: string | null;
  /**
   * The first `hello`: the socket now hears the user's feed. What changed between
   * the page's HTTP loads and this moment was heard by no one: load them again.
   */
  onFirstConnected?: () => void;
}

export interface ChatSocket {
  status: ConnectionStatus;
  send: (frame: QueuedFrame) => void;
  reconnectNow: () => void;
}

/** How long events gather before one dispatch (a render per ~frame, not per token). */
const BATCH_MS = 16;

/**
 * The tab's WebSocket, wired to the reducer: events are batched into one
 * dispatch per frame, and the newest event id seen is what a reconnect resumes
 * after (events still waiting in the batch count: they will be applied).
 */
export function useChatSocket({ enabled, dispatch, outbox, initialLastEventId, onConnectFailed, onReconnected, watching, onFirstConnected }: ChatSocketOptions): ChatSocket {
  const [status, setStatus] = useState<ConnectionStatus>({ state: "connecting", attempt: 0 });
  const connection = useRef<ChatConnection | null>(null);
  const lastSeen = useRef<string | null>(initialLastEventId);
  const lastFeed = useRef<string | null>(null);
  const watched = useRef<string | null>(watching);
  useEffect(() => {
    if (watched.current === watching) return;
    watched.current = watching;
    connection.current?.watch(watching);
  }, [watching]);
  const callbacks = useRef({ onConnectFailed, onReconnected, onFirstConnected });
  callbacks.current = { onConnectFailed, onReconnected, onFirstConnected };

  useEffect(() => {
    if (!enabled) return;
    let batch: ServerEvent[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      const events = batch;
      batch = [];
      if (events.length > 0) dispatch({ type: "server_events", events });
    };
    let failures = 0;
    let greeted = false;
    const conn = new ChatConnection({
      url: socketUrl(),
      // Read at each connect: after a refusal (4403) the tab takes a new session id.
      protocols: () => socketProtocols(sessionId(sessionStorage)),
      outbox,
      lastEventId: () => lastSeen.current,
      lastFeedId: () => lastFeed.current,
      watching: () => watched.current,
      onEvent: (event) => {
        const id = event.event_id;
        if (isEventId(id) && (lastSeen.current === null || compareEventIds(id, lastSeen.current) > 0)) {
          lastSeen.current = id;
        }
        const feedId = event.feed_id;
        if (isEventId(feedId) && (lastFeed.current === null || compareEventIds(feedId, lastFeed.current) > 0)) {
          lastFeed.current = feedId;
        }
        if (event.type === "hello") {
          failures = 0;
          if (!greeted) callbacks.current.onFirstConnected?.();
          greeted = true;
        }
        batch.push(event);
        if (timer === null) timer = setTimeout(flush, BATCH_MS);
      },
      onStatus: setStatus,
      onConnectFailed: (code) => {
        // The session id is someone else's (say, the tab's previous user): start a fresh one.
        if (code === CLOSE_NOT_YOUR_SESSION) safeRemove(sessionStorage, STORAGE_KEYS.session);
        // Signed out (here or elsewhere): ask at once. Any other refusal may be a
        // restarting gateway; a second in a row is worth asking whether we're still signed in.
        failures += 1;
        if (code === CLOSE_SIGNED_OUT || failures >= 2) callbacks.current.onConnectFailed();
      },
      onReconnected: () => callbacks.current.onReconnected(),
      isOnline: () => navigator.onLine !== false,
    });
    connection.current = conn;
    conn.start();

    const online = () => conn.reconnectNow();
    const offline = () => conn.wentOffline();
    const visible = () => {
      if (document.visibilityState === "visible") conn.reconnectNow();
    };
    window.addEventListener("online", online);
    window.addEventListener("offline", offline);
    document.addEventListener("visibilitychange", visible);
    return () => {
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
      document.removeEventListener("visibilitychange", visible);
      if (timer !== null) clearTimeout(timer);
      flush();
      conn.stop();
      connection.current = null;
    };
  }, [enabled, dispatch, outbox]);

  const send = useCallback(
    (frame: QueuedFrame) => {
      if (connection.current) connection.current.send(frame);
      else outbox.push(frame); // sent after the connection's first hello
    },
    [outbox],
  );
  const reconnectNow = useCallback(() => connection.current?.reconnectNow(), []);

  return { status, send, reconnectNow };
}
