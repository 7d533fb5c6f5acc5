/**
 * Uploading files (`POST /api/files`, multipart) with upload progress, and
 * reading their status. XMLHttpRequest because fetch reports no upload progress.
 */
import { ApiError, api } from "./client";
import type { ApiErrorBody, FileInfo } from "./types";

export function uploadFile(file: File, onProgress: (share: number) => void, signal?: AbortSignal): Promise<FileInfo> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/files");
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

export const getFile = (id: string) => api.file(id);
