import { describe, expect, it } from "vitest";
import { Outbox } from "../outbox";

const message = (client_id: string, content = client_id) => ({ type: "message" as const, content, client_id, conversation_id: "conv1" });

describe("outbox", () => {
  it("sends in the order typed and keeps messages until the server acknowledges them", () => {
    const box = new Outbox();
    box.push(message("a"));
    box.push(message("b"));
    box.push({ type: "stop", turn_id: "t1" });
    expect(box.takeSendable("s1", 0, 3000).map((f) => f.type === "message" ? f.client_id : f.type)).toEqual(["a", "b", "stop"]);
    // Written but not acknowledged: not sent twice on the same socket, still held.
    expect(box.takeSendable("s1", 10, 3000)).toEqual([]);
    expect(box.size).toBe(2);
    expect(box.ack("a")).toBe(true);
    expect(box.ack("a")).toBe(false);
    expect(box.list().map((i) => i.frame)).toEqual([message("b")]);
  });

  it("resends a message lost with its socket only after the replay had time to acknowledge it, keeping order", () => {
    const box = new Outbox();
    box.push(message("a"));
    box.takeSendable("s1", 1000, 3000); // written, then the socket died
    box.push(message("b")); // typed while reconnecting
    // New socket: "a" may have reached the server; wait for the replay before sending it again,
    // and "b" waits behind it so the server never sees b before a.
    expect(box.takeSendable("s2", 2000, 3000)).toEqual([]);
    expect(box.nextResendAt("s2", 3000)).toBe(4000);
    expect(box.takeSendable("s2", 4000, 3000)).toEqual([message("a"), message("b")]);
  });

  it("does not resend what the replay acknowledged", () => {
    const box = new Outbox();
    box.push(message("a"));
    box.push(message("b"));
    box.takeSendable("s1", 1000, 3000);
    box.ack("a"); // the resumed replay carried a's user_message
    expect(box.takeSendable("s2", 5000, 3000)).toEqual([message("b")]);
  });

  it("survives a reload through storage and forgets what was acknowledged", () => {
    const storage = window.sessionStorage;
    storage.clear();
    const box = new Outbox(storage, "k");
    box.push(message("a", "typed offline"));
    box.push(message("b"));
    const reloaded = new Outbox(storage, "k");
    expect(reloaded.list().map((i) => i.frame)).toEqual([message("a", "typed offline"), message("b")]);
    reloaded.ack("a");
    reloaded.ack("b");
    expect(storage.getItem("k")).toBeNull();
    expect(new Outbox(storage, "k").size).toBe(0);
  });

  it("ignores garbage in storage", () => {
    window.sessionStorage.setItem("bad", "{not json");
    expect(new Outbox(window.sessionStorage, "bad").size).toBe(0);
    window.sessionStorage.setItem("bad2", JSON.stringify([{ nope: 1 }, { frame: message("x"), sentAt: null }]));
    expect(new Outbox(window.sessionStorage, "bad2").list().map((i) => i.frame)).toEqual([message("x")]);
  });

  it("knows which messages were never written to a socket", () => {
    const outbox = new Outbox();
    outbox.push({ type: "message", content: "a", client_id: "c1" });
    outbox.push({ type: "message", content: "b", client_id: "c2" });
    outbox.takeSendable("s1", 0, 3000);
    outbox.push({ type: "message", content: "c", client_id: "c3" });
    expect([...outbox.unsentClientIds()]).toEqual(["c3"]);
  });
});
