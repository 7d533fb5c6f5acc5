import { useCallback, useEffect, useRef, useState, type RefObject } from "react";

/** Within this many pixels of the bottom counts as "at the bottom". */
const THRESHOLD = 48;

export interface AutoScroll {
  /** The view is at the bottom (hide "Jump to latest"). */
  atBottom: boolean;
  /** Stick to the bottom again and go there (sending a message, the jump button). */
  stickToBottom: (behavior?: ScrollBehavior) => void;
}

/**
 * Follow new content while the reader is at the bottom; stop as soon as they
 * scroll up (wheel, touch, keys, the scrollbar) and resume when they come
 * back down. Growth is seen with a ResizeObserver on the content, so it works
 * for streamed text, new messages and late-measured virtual rows alike.
 */
export function useAutoScroll(
  scrollRef: RefObject<HTMLElement | null>,
  contentRef: RefObject<HTMLElement | null>,
  onStick?: () => void,
): AutoScroll {
  const stuck = useRef(true);
  const [atBottom, setAtBottom] = useState(true);
  const onStickRef = useRef(onStick);
  onStickRef.current = onStick;

  useEffect(() => {
    const el = scrollRef.current;
    const content = contentRef.current;
    if (!el || !content) return;
    const toBottom = () => {
      el.scrollTop = el.scrollHeight;
    };
    let lastTop = el.scrollTop;
    const onScroll = () => {
      const distance = el.scrollHeight - el.scrollTop - el.clientHeight;
      const bottom = distance <= THRESHOLD;
      // Back at the bottom re-sticks; moving up away from it (scrollbar, find-in-page,
      // anything) un-sticks. Growth never scrolls by itself, so it can't un-stick us.
      if (bottom) stuck.current = true;
      else if (el.scrollTop < lastTop - 1) stuck.current = false;
      lastTop = el.scrollTop;
      setAtBottom(bottom);
    };
    const unstick = () => {
      if (el.scrollHeight > el.clientHeight) {
        stuck.current = false;
      }
    };
    const onWheel = (e: WheelEvent) => {
      if (e.deltaY < 0) unstick();
    };
    const onKey = (e: KeyboardEvent) => {
      if (["ArrowUp", "PageUp", "Home"].includes(e.key) && e.target === el) unstick();
    };
    const observer = new ResizeObserver(() => {
      if (stuck.current) toBottom();
    });
    observer.observe(content);
    el.addEventListener("scroll", onScroll, { passive: true });
    el.addEventListener("wheel", onWheel, { passive: true });
    el.addEventListener("touchmove", unstick, { passive: true });
    el.addEventListener("keydown", onKey);
    return () => {
      observer.disconnect();
      el.removeEventListener("scroll", onScroll);
      el.removeEventListener("wheel", onWheel);
      el.removeEventListener("touchmove", unstick);
      el.removeEventListener("keydown", onKey);
    };
  }, [scrollRef, contentRef]);

  const stickToBottom = useCallback(
    (behavior: ScrollBehavior = "auto") => {
      stuck.current = true;
      setAtBottom(true);
      onStickRef.current?.();
      const el = scrollRef.current;
      if (el) el.scrollTo({ top: el.scrollHeight, behavior });
    },
    [scrollRef],
  );

  return { atBottom, stickToBottom };
}
