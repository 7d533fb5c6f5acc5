import { ChevronLeft, ChevronRight } from "lucide-react";
import { IconButton } from "../ui/IconButton";

export interface BranchNavProps {
  index: number;
  count: number;
  onSelect: (index: number) => void;
  disabled?: boolean;
}

/** `‹ 2/3 ›` between the versions of a message. */
export function BranchNav({ index, count, onSelect, disabled }: BranchNavProps) {
  if (count < 2) return null;
  return (
    <div className="branch-nav" role="group" aria-label="Versions">
      <IconButton label="Previous version" size="sm" disabled={disabled || index === 0} onClick={() => onSelect(index - 1)}>
        <ChevronLeft size={16} />
      </IconButton>
      <span className="branch-nav__count" aria-live="polite">
        <span className="visually-hidden">Version </span>
        {index + 1}/{count}
      </span>
      <IconButton label="Next version" size="sm" disabled={disabled || index === count - 1} onClick={() => onSelect(index + 1)}>
        <ChevronRight size={16} />
      </IconButton>
    </div>
  );
}
