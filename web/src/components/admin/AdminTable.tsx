import type { ReactNode } from "react";

interface AdminTableProps {
  /** Extra classes after admin__table (column widths of one table). */
  className?: string;
  /** The header cells (<th>s). */
  head: ReactNode;
  /** The rows (<tr>s). */
  children: ReactNode;
}

/** A console table: scrolls sideways in its wrapper on a narrow screen. */
export function AdminTable({ className, head, children }: AdminTableProps) {
  return (
    <div className="admin__table-wrap">
      <table className={className ? `admin__table ${className}` : "admin__table"}>
        <thead>
          <tr>{head}</tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
