import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerEvent } from "../../protocol.gen";
import { ChatConnection, type ConnectionStatus } from "../connection";
import { Outbox } from "../outbox";
import { FakeSocket } from "./fakeSocket";

const latest = () => FakeSocket.all[FakeSocket.all.length - 1]!;

function setup(opts: { lastEventId?: string | null; online?: () => boolean; onConnectFailed?: (code: number) => void } = {}) {
  const events: ServerEvent[] = [];
  const statuses: ConnectionStatus[] = [];
  let lastEventId = opts.lastEventId ?? null;
  const outbox = new Outbox();
  const reconnected = vi.fn();
  const conn = new ChatConnection({
    url: "ws://test/ws",
    protocols: () => ["tidechat", "tidechat.session.sid12345"],
    outbox,
    lastEventId: () => lastEventId,
    onEvent: (e) => {
      events.push(e);
      if (e.event_id) lastEventId = e.event_id;
    },
    onStatus: (s) => statuses.push(s),
    onReconnected: reconnected,
    onConnectFailed: opts.onConnectFailed,
    createSocket: (url, protocols) => new FakeSocket(url, protocols),
    isOnline: opts.online,
    random: () => 0.5,
    pingIntervalMs: 25_000,
    pongTimeoutMs: 10_000,
    resendAfterMs: 3000,
  });
  return { conn, events, statuses, outbox, reconnected, status: () => statuses[statuses.length - 1]! };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("live sync", () => {
  it("resumes the user's feed too, then names the conversation on screen on every new socket", () => {
    let watching: string | null = "conv1";
    let feed: string | null = null;
    const conn = new ChatConnection({
      url: "ws://test/ws",
      outbox: new Outbox(),
      lastEventId: () => "9-0",
      lastFeedId: () => feed,
      watching: () => watching,
      onEvent: (e) => {
        if (e.feed_id) feed = e.feed_id;
      },
      onStatus: () => {},
      createSocket: (url, protocols) => new FakeSocket(url, protocols),
      random: () => 0.5,
    });
    conn.start();
    latest().open();
    expect(latest().sent).toEqual([
      { type: "resume", after: "9-0" },
      { type: "watch", conversation_id: "conv1" },
    ]);
    latest().hello();
    latest().receive({ type: "turn_started", feed_id: "20-1", turn_id: "t", conversation_id: "conv2", title: "x", updated_at: 1 });
    watching = "conv2";
    conn.watch("conv2");
    expect(latest().sent[2]).toEqual({ type: "watch", conversation_id: "conv2" });
    latest().drop();
    vi.runOnlyPendingTimers();
    latest().open();
    expect(latest().sent).toEqual([
      { type: "resume", after: "9-0", feed_after: "20-1" },
      { type: "watch", conversation_id: "conv2" },
    ]);
    conn.stop();
  });
});

describe("connecting and resuming", () => {
  it("starts delivery at the live end with a ping when nothing was applied yet", () => {
    const { conn, status } = setup();
    conn.start();
    expect(latest().url).toBe("ws://test/ws");
    expect(latest().protocols).toEqual(["tidechat", "tidechat.session.sid12345"]);
    expect(status()).toEqual({ state: "connecting", attempt: 0 });
    latest().open();
    expect(latest().sent).toEqual([{ type: "ping" }]);
    latest().hello();
    expect(status()).toEqual({ state: "connected" });
  });

  it("sends resume with the last applied event id as the very first frame", () => {
    const { conn, outbox } = setup({ lastEventId: "1700-3" });
    outbox.push({ type: "message", content: "typed offline", client_id: "c1" });
    conn.start();
    latest().open();
    latest().hello();
    expect(latest().sent).toEqual([
      { type: "resume", after: "1700-3" },
      { type: "message", content: "typed offline", client_id: "c1" },
    ]);
  });

  it("resumes from the newest event after a drop, so nothing is replayed twice", () => {
    const { conn, events, reconnected } = setup();
    conn.start();
    latest().open();
    latest().hello();
    latest().receive({ type: "stream_chunk", event_id: "5-0", turn_id: "t", chunk: "a" });
    latest().receive({ type: "stream_chunk", event_id: "5-1", turn_id: "t", chunk: "b" });
    latest().drop();
    vi.runOnlyPendingTimers();
    latest().open();
    expect(latest().sent[0]).toEqual({ type: "resume", after: "5-1" });
    latest().hello();
    expect(reconnected).toHaveBeenCalledTimes(1);
    expect(events.filter((e) => e.type === "stream_chunk")).toHaveLength(2);
  });
});

describe("reconnecting", () => {
  it("backs off exponentially with a visible countdown and resets after a good connection", () => {
    const { conn, status } = setup();
    vi.setSystemTime(0);
    conn.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      latest().drop();
      const s = status();
      expect(s.state).toBe("reconnecting");
      if (s.state === "reconnecting") delays.push(s.retryAt - Date.now());
      vi.advanceTimersByTime(delays[i]! - 1);
      const before = FakeSocket.all.length;
      vi.advanceTimersByTime(1);
      expect(FakeSocket.all.length).toBe(before + 1);
    }
    expect(delays).toEqual([375, 750, 1500, 3000]); // random() = 0.5: 3/4 of each ceiling
    latest().open();
    latest().hello();
    latest().drop();
    const s = status();
    expect(s.state === "reconnecting" && s.retryAt - Date.now()).toBe(375);
  });

  it("waits for the network instead of retrying while the browser is offline", () => {
    let online = true;
    const { conn, status } = setup({ online: () => online });
    conn.start();
    latest().open();
    latest().hello();
    online = false;
    conn.wentOffline();
    expect(status()).toEqual({ state: "offline" });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    online = true;
    conn.reconnectNow();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("takes a socket that stops answering pings for dead", () => {
    const { conn, status } = setup();
    conn.start();
    latest().open();
    latest().hello();
    vi.advanceTimersByTime(25_000);
    expect(latest().sent.at(-1)).toEqual({ type: "ping" });
    latest().receive({ type: "pong" });
    vi.advanceTimersByTime(25_000 + 9_999);
    expect(status()).toEqual({ state: "connected" });
    vi.advanceTimersByTime(1);
    expect(latest().closed).toBe(true);
    expect(status().state).toBe("reconnecting");
  });

  it("stop() closes for good", () => {
    const { conn, status } = setup();
    conn.start();
    latest().open();
    latest().hello();
    conn.stop();
    expect(status()).toEqual({ state: "closed" });
    vi.advanceTimersByTime(120_000);
    expect(FakeSocket.all).toHaveLength(1);
  });
});

describe("the outbox over a flaky connection", () => {
  it("holds messages typed offline and sends them in order once connected", () => {
    const { conn } = setup();
    conn.start();
    conn.send({ type: "message", content: "one", client_id: "c1" });
    conn.send({ type: "message", content: "two", client_id: "c2" });
    latest().drop();
    vi.runOnlyPendingTimers();
    latest().open();
    expect(latest().sent).toEqual([{ type: "ping" }]); // nothing before hello
    latest().hello();
    expect(latest().sent.slice(1).map((f) => f.type === "message" && f.content)).toEqual(["one", "two"]);
  });

  it("sends at once when connected, and acknowledges by client_id", () => {
    const { conn, outbox } = setup();
    conn.start();
    latest().open();
    latest().hello();
    conn.send({ type: "message", content: "hi", client_id: "c1" });
    expect(latest().sent.at(-1)).toEqual({ type: "message", content: "hi", client_id: "c1" });
    expect(outbox.size).toBe(1);
    latest().receive({
      type: "user_message", event_id: "9-0", conversation_id: "conv", client_id: "c1",
      message: { id: "u1", role: "user", content: "hi" },
    });
    expect(outbox.size).toBe(0);
  });

  it("resends a message whose socket died unacknowledged, unless the replay acknowledges it", () => {
    const { conn, outbox } = setup({ lastEventId: "1-0" });
    conn.start();
    latest().open();
    latest().hello();
    conn.send({ type: "message", content: "lost?", client_id: "c1" });
    conn.send({ type: "message", content: "received", client_id: "c2" });
    latest().drop();
    vi.runOnlyPendingTimers();
    latest().open();
    latest().hello();
    // The replay brings c2's acknowledgement; c1 never reached the server.
    latest().receive({ type: "user_message", event_id: "2-0", conversation_id: "conv", client_id: "c2", message: { id: "u2", role: "user", content: "received" } });
    expect(latest().sent).toEqual([{ type: "resume", after: "1-0" }]);
    vi.advanceTimersByTime(3000);
    expect(latest().sent.slice(1)).toEqual([{ type: "message", content: "lost?", client_id: "c1" }]);
    expect(outbox.size).toBe(1);
  });
});

describe("refusals", () => {
  it("reports a sign-out even after hello, and a refusal before it", () => {
    const failed = vi.fn();
    const { conn } = setup({ onConnectFailed: failed });
    conn.start();
    latest().open();
    latest().hello();
    latest().drop(1006);
    expect(failed).not.toHaveBeenCalled(); // a dropped connection: just reconnect
    vi.runOnlyPendingTimers();
    latest().open();
    latest().hello();
    latest().drop(4401); // signed out while connected
    expect(failed).toHaveBeenCalledWith(4401);
    vi.runOnlyPendingTimers();
    latest().open();
    latest().drop(4403); // refused before hello
    expect(failed).toHaveBeenLastCalledWith(4403);
  });
});
