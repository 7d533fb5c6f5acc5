import type { Ref } from "react";
import { ACCEPT } from "../../api/files";

/** The hidden file input a button opens (the composer's paperclip, a collection's "Add files"). */
export function FilePicker({ ref, testId, onFiles }: { ref: Ref<HTMLInputElement>; testId: string; onFiles: (files: File[]) => void }) {
  return (
    <input
      ref={ref}
      type="file"
      multiple
      hidden
      accept={ACCEPT}
      data-testid={testId}
      onChange={(e) => {
        if (e.target.files) onFiles(Array.from(e.target.files));
        e.target.value = "";
      }}
    />
  );
}
