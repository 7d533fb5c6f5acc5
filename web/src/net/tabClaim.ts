/**
 * A duplicated browser tab inherits its original's sessionStorage: the same
 * session id, last event id and outbox. Two tabs on one session would both
 * receive its events and could send the same queued message twice, so at
 * start-up a tab asks the others whether its session id is live; if one
 * answers, this tab is the copy and starts afresh (the original keeps the
 * outbox and sends it).
 */
import { STORAGE_KEYS, isSessionId, safeGet, safeRemove } from "./session";

const CHANNEL = "tidechat:tabs";

type Message = { kind: "who-has"; sid: string; nonce: string } | { kind: "mine"; sid: string; nonce: string };

/** Answer other tabs' questions about our session id, for as long as this page lives. */
function answerFor(storage: Storage): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (e: MessageEvent<Message>) => {
    if (e.data?.kind === "who-has" && e.data.sid === safeGet(storage, STORAGE_KEYS.session)) {
      channel.postMessage({ kind: "mine", sid: e.data.sid, nonce: e.data.nonce } satisfies Message);
    }
  };
}

/**
 * Resolve once this tab's stored session is its own (clearing it if another
 * live tab holds the same id). Waits `timeoutMs` only when there is an id to check.
 */
export async function claimTabSession(storage: Storage = sessionStorage, timeoutMs = 80): Promise<void> {
  if (typeof BroadcastChannel === "undefined") return;
  const sid = safeGet(storage, STORAGE_KEYS.session);
  if (isSessionId(sid)) {
    const nonce = Math.random().toString(36).slice(2);
    const channel = new BroadcastChannel(CHANNEL);
    const taken = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      channel.onmessage = (e: MessageEvent<Message>) => {
        if (e.data?.kind === "mine" && e.data.nonce === nonce) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      channel.postMessage({ kind: "who-has", sid, nonce } satisfies Message);
    });
    channel.close();
    if (taken) for (const key of Object.values(STORAGE_KEYS)) safeRemove(storage, key);
  }
  answerFor(storage);
}
