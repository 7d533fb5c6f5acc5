/**
 * Knowledge collections (docs/documents.md): named sets of the user's files
 * that a conversation attaches, so its turns retrieve from them too. Files
 * go in with `uploadFile(file, progress, signal, collectionId)`.
 */
import { request } from "./client";
import type { FileInfo } from "./types";

/** `GET /api/collections`: one of the user's collections. */
export interface CollectionInfo {
  id: string;
  name: string;
  created_at: number;
  /** How many files it holds. */
  files: number;
}

const col = (id: string) => `/api/collections/${encodeURIComponent(id)}`;
const attached = (conversationId: string) => `/api/conversations/${encodeURIComponent(conversationId)}/collections`;

export const collections = {
  list: () => request<CollectionInfo[]>("GET", "/api/collections"),
  create: (name: string) => request<CollectionInfo>("POST", "/api/collections", { name }),
  rename: (id: string, name: string) => request<CollectionInfo>("PATCH", col(id), { name }),
  remove: (id: string) => request<void>("DELETE", col(id)),
  files: (id: string) => request<FileInfo[]>("GET", `${col(id)}/files`),
  removeFile: (id: string, fileId: string) => request<void>("DELETE", `${col(id)}/files/${encodeURIComponent(fileId)}`),
  /** The collections a conversation attaches, in the order attached. */
  attached: (conversationId: string) => request<CollectionInfo[]>("GET", attached(conversationId)),
  attach: (conversationId: string, id: string) => request<void>("PUT", `${attached(conversationId)}/${encodeURIComponent(id)}`),
  detach: (conversationId: string, id: string) => request<void>("DELETE", `${attached(conversationId)}/${encodeURIComponent(id)}`),
};
