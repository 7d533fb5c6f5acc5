import { render } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConversationList, type ConversationListProps } from "../ConversationList";

/** An IntersectionObserver that reports its target in view as soon as it observes, as browsers do. */
class InView {
  static live = 0;
  constructor(private readonly report: (entries: { isIntersecting: boolean }[]) => void) {}
  observe() {
    InView.live += 1;
    this.report([{ isIntersecting: true }]);
  }
  disconnect() {
    InView.live -= 1;
  }
}

afterEach(() => vi.unstubAllGlobals());

function props(over: Partial<ConversationListProps>): ConversationListProps {
  return {
    items: [],
    activeId: null,
    loading: false,
    error: false,
    hasMore: true,
    searching: false,
    onLoadMore: vi.fn(),
    onOpen: vi.fn(),
    onRename: vi.fn(),
    onDelete: vi.fn(),
    ...over,
  };
}

describe("ConversationList paging", () => {
  it("asks for more when a load ends with the list's end still in view", () => {
    vi.stubGlobal("IntersectionObserver", InView);
    const onLoadMore = vi.fn();
    // The end comes into view while the list is reloading: nothing asked then...
    const view = render(<ConversationList {...props({ loading: true, onLoadMore })} />);
    expect(onLoadMore).not.toHaveBeenCalled();
    // ...and the next page is asked for once the load is over, without another scroll.
    view.rerender(<ConversationList {...props({ loading: false, onLoadMore })} />);
    expect(onLoadMore).toHaveBeenCalledTimes(1);
    view.unmount();
    expect(InView.live).toBe(0);
  });
});
