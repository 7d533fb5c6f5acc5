/**
 * Uploading files (`POST /api/files`, multipart) with upload progress, and
 * reading their status. XMLHttpRequest because fetch reports no upload progress.
 */
import { ApiError, api } from "./client";
import type { ApiErrorBody, FileInfo } from "./types";

/** `collection`: into one of the user's knowledge collections instead of for a message. */
export function uploadFile(file: File, onProgress: (share: number) => void, signal?: AbortSignal, collection?: string): Promise<FileInfo> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", collection ? `/api/files?collection=${encodeURIComponent(collection)}` : "/api/files");
    xhr.withCredentials = true;
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      const body = xhr.response as FileInfo | ApiErrorBody | null;
      if (xhr.status === 201 && body && "id" in body) resolve(body);
      else {
        const error = body && "error" in body ? body.error : null;
        reject(new ApiError(xhr.status, String(error?.code ?? "internal"), error?.message ?? `The server answered ${xhr.status}.`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "Can't reach the server. Check your connection."));
    signal?.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** What the file pickers offer (the server decides by the bytes, not the name). */
export const ACCEPT = ".txt,.md,.markdown,.csv,.json,.html,.htm,.pdf,.docx,.py,.js,.ts,.tsx,.java,.c,.cpp,.h,.go,.rs,.rb,.sh,.yaml,.yml,.toml,.xml,.sql,image/png,image/jpeg,image/webp,image/gif";

export const getFile = (id: string) => api.file(id);
