/** Sidebar grouping by the local calendar day of a conversation's last update. */
import type { ConversationSummary } from "../protocol.gen";

export type DateGroupLabel = "Today" | "Yesterday" | "Previous 7 days" | "Older";

export interface DateGroup {
  label: DateGroupLabel;
  items: ConversationSummary[];
}

const ORDER: DateGroupLabel[] = ["Today", "Yesterday", "Previous 7 days", "Older"];

function startOfDay(d: Date): number {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Whole local calendar days between two instants (DST-safe: counts midnights, not 24 h spans). */
function daysBetween(earlier: Date, later: Date): number {
  const a = new Date(startOfDay(earlier));
  const b = new Date(startOfDay(later));
  const utcA = Date.UTC(a.getFullYear(), a.getMonth(), a.getDate());
  const utcB = Date.UTC(b.getFullYear(), b.getMonth(), b.getDate());
  return Math.round((utcB - utcA) / 86_400_000);
}

export function dateGroupOf(updatedAtSeconds: number, now: Date): DateGroupLabel {
  const days = daysBetween(new Date(updatedAtSeconds * 1000), now);
  if (days <= 0) return "Today"; // also a clock a little ahead of ours
  if (days === 1) return "Yesterday";
  if (days <= 7) return "Previous 7 days";
  return "Older";
}

/** Newest first, in the four groups, empty groups left out. */
export function groupByDate(items: readonly ConversationSummary[], now: Date): DateGroup[] {
  const sorted = [...items].sort((a, b) => b.updated_at - a.updated_at || a.id.localeCompare(b.id));
  const groups = new Map<DateGroupLabel, ConversationSummary[]>();
  for (const item of sorted) {
    const label = dateGroupOf(item.updated_at, now);
    const list = groups.get(label) ?? [];
    list.push(item);
    groups.set(label, list);
  }
  return ORDER.filter((label) => groups.has(label)).map((label) => ({ label, items: groups.get(label)! }));
}
