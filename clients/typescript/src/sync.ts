// Keeps a local copy of the caller's tasks current from the change feed, GET /api/v1/changes.
// docs/frontend.md ("Sync") quotes this file whole; scenario.ts runs it against the API.
import type { Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Task = components["schemas"]["Task"];
export type Change = components["schemas"]["Change"];
export type ChangePage = components["schemas"]["ChangePage"];

export interface SyncState {
  tasks: Map<number, Task>; // by id: the same objects GET /api/v1/tasks returns
  cursor?: string; // of the last page applied; none: the next sync starts from scratch
  etag?: string; // of that page, for If-None-Match
  onReminder?: (task: Task) => void; // a reminder fired: show a notification
}

/** Applies a page in order, then takes its cursor: a page lost half-way is simply fetched again. */
export function applyPage(state: SyncState, page: ChangePage): void {
  for (const change of page.changes) {
    switch (change.kind) {
      case "upsert":
        state.tasks.set(change.id, change.task);
        break;
      case "delete":
        state.tasks.delete(change.id);
        break;
      case "reminder":
        state.tasks.set(change.id, change.task);
        state.onReminder?.(change.task);
        break;
      default:
        break; // a kind added after this client was built: not ours to apply
    }
  }
  state.cursor = page.cursor;
}

/** Brings `state` up to date: every page until `has_more` is false. Run one sync at a time per state. */
export async function sync(api: Client<paths>, state: SyncState, limit?: number): Promise<void> {
  for (;;) {
    const { data, error, response } = await api.GET("/api/v1/changes", {
      params: { query: { cursor: state.cursor, limit }, header: { "If-None-Match": state.etag } },
    });
    if (response.status === 304) return; // nothing changed since the last page
    if (response.status === 410 || error?.code === "invalid_cursor") {
      // Changes after our cursor were purged (or it is not this user's): start again from scratch.
      if (state.cursor === undefined) throw new Error(`sync: ${response.status}`);
      state.cursor = state.etag = undefined;
      continue;
    }
    if (!data) throw new Error(`sync: ${response.status} ${error?.code ?? ""}`);
    // A sync from scratch lists the tasks there are: one deleted meanwhile must not stay in the copy.
    if (state.cursor === undefined) state.tasks.clear();
    applyPage(state, data);
    state.etag = response.headers.get("ETag") ?? undefined;
    if (!data.has_more) return;
  }
}
