import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { QuotaStatus } from "../api/types";

/** Below this share of a daily quota left, the chat says how much remains. */
const LOW_SHARE = 0.2;

/**
 * What is left of today's quotas, refetched whenever a reply finishes
 * (`generating` goes false, or the conversation's message count changes);
 * `notice` is the words to show when it runs low.
 */
export function useQuota(generating: boolean, messages: number): { quota: QuotaStatus | null; notice: string | null } {
  const [quota, setQuota] = useState<QuotaStatus | null>(null);
  useEffect(() => {
    if (generating) return;
    let alive = true;
    api
      .quota()
      .then((q) => alive && setQuota(q))
      .catch(() => {});
    return () => {
      alive = false;
    };
  }, [generating, messages]);
  return { quota, notice: quota ? quotaNotice(quota) : null };
}

export function quotaNotice(q: QuotaStatus): string | null {
  const parts: string[] = [];
  const turnsLeft = Math.max(0, q.turns.limit - q.turns.used);
  const tokensLeft = Math.max(0, q.tokens.limit - q.tokens.used);
  if (q.turns.limit > 0 && turnsLeft <= Math.max(1, q.turns.limit * LOW_SHARE)) {
    parts.push(turnsLeft === 0 ? "no messages left today" : `${turnsLeft} message${turnsLeft === 1 ? "" : "s"} left today`);
  }
  if (q.tokens.limit > 0 && tokensLeft <= q.tokens.limit * LOW_SHARE) {
    parts.push(tokensLeft === 0 ? "no tokens left today" : `${tokensLeft.toLocaleString()} tokens left today`);
  }
  if (parts.length === 0) return null;
  const hours = Math.floor(q.resets_in / 3600);
  const minutes = Math.ceil((q.resets_in % 3600) / 60);
  const renew = hours > 0 ? `${hours} h ${minutes} min` : `${minutes} min`;
  const text = parts.join(", ");
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (your quota renews in ${renew}, at midnight UTC).`;
}
