/**
 * Session stream entry ids ("<ms>-<seq>", Redis stream ids) compared as numbers.
 *
 * String comparison would put "999-0" after "1000-0", so both parts are parsed;
 * BigInt because the protocol allows up to 20 digits per part.
 */
const EVENT_ID = /^(\d{1,20})-(\d{1,20})$/;

export function isEventId(value: unknown): value is string {
  return typeof value === "string" && EVENT_ID.test(value);
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareEventIds(a: string, b: string): number {
  const ma = EVENT_ID.exec(a);
  const mb = EVENT_ID.exec(b);
  if (!ma || !mb) throw new Error(`not an event id: ${ma ? b : a}`);
  const msA = BigInt(ma[1]!);
  const msB = BigInt(mb[1]!);
  if (msA !== msB) return msA < msB ? -1 : 1;
  const seqA = BigInt(ma[2]!);
  const seqB = BigInt(mb[2]!);
  return seqA === seqB ? 0 : seqA < seqB ? -1 : 1;
}

/** Whether an event with `eventId` has already been applied, given the last applied id. */
export function isAlreadyApplied(eventId: string, lastApplied: string | null): boolean {
  return lastApplied !== null && compareEventIds(eventId, lastApplied) <= 0;
}
