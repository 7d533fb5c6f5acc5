import { ApiError } from "./client";

/** What to tell a person when a request failed: the server's words when it sent some. */
export function errorMessage(exc: unknown): string {
  return exc instanceof ApiError ? exc.message : "Something went wrong. Please try again.";
}
