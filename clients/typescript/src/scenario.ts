// Runs the client against a live API (TODO_API_URL, TODO_API_TOKEN) through the calls a Next.js
// frontend makes; exits non-zero at the first answer that differs from what the schema promised.
import assert from "node:assert/strict";
import type { Middleware } from "openapi-fetch";
import { createTodoClient, type ApiError, type Task } from "./client.js";
import type { paths } from "./schema.js";
import { applyPage, sync, type Change, type SyncState } from "./sync.js";

type ListQuery = paths["/api/v1/tasks"]["get"]["parameters"]["query"];

const api = createTodoClient(process.env.TODO_API_URL ?? "http://127.0.0.1:8000", () => {
  const token = process.env.TODO_API_TOKEN;
  if (!token) throw new Error("TODO_API_TOKEN is not set");
  return token;
});

async function create(title: string, priority: Task["priority"], tags: string[], due_at: string | null) {
  const { data, error, response } = await api.POST("/api/v1/tasks", { body: { title, priority, tags, due_at } });
  assert.equal(response.status, 201, JSON.stringify(error));
  assert.ok(data);
  assert.equal(typeof data.id, "number");
  return data;
}

async function titles(query: ListQuery) {
  const { data, error } = await api.GET("/api/v1/tasks", { params: { query } });
  assert.ok(data, JSON.stringify(error));
  return data.results.map((task) => task.title);
}

const rent = await create("Pay rent", "high", ["Home", "Bills"], "2026-12-01T09:00:00+01:00");
assert.equal(rent.priority, "high");
assert.deepEqual(rent.tags, ["Bills", "Home"]);
assert.equal(rent.due_at, "2026-12-01T08:00:00Z");
assert.equal(rent.completed_at, null);
const plumber = await create("Call the plumber", "high", [], null);
const oatMilk = await create("Buy oat milk", "medium", ["Errands"], null);
const plants = await create("Water the plants", "low", ["home"], null);

// Arrays go as openapi-fetch sends them by default: priority=high&priority=medium.
assert.deepEqual(
  new Set(await titles({ priority: ["high", "medium"] })),
  new Set(["Pay rent", "Call the plumber", "Buy oat milk"]),
);
assert.deepEqual(new Set(await titles({ tag: ["HOME"] })), new Set(["Pay rent", "Water the plants"]));
assert.deepEqual(await titles({ ordering: ["-priority", "title"] }), [
  "Call the plumber",
  "Pay rent",
  "Buy oat milk",
  "Water the plants",
]);

const completed = await api.PATCH("/api/v1/tasks/{id}", { params: { path: { id: rent.id } }, body: { completed: true } });
assert.ok(completed.data, JSON.stringify(completed.error));
assert.equal(completed.data.completed, true);
assert.equal(typeof completed.data.completed_at, "string");

const tags = await api.GET("/api/v1/tags");
assert.ok(tags.data, JSON.stringify(tags.error));
assert.deepEqual(tags.data, [
  { name: "Bills", count: 1 },
  { name: "Errands", count: 1 },
  { name: "Home", count: 2 },
]);

const deleted = await api.DELETE("/api/v1/tasks/{id}", { params: { path: { id: plants.id } } });
assert.equal(deleted.response.status, 204);

const missing = await api.GET("/api/v1/tasks/{id}", { params: { path: { id: plants.id } } });
assert.equal(missing.data, undefined);
const notFound: ApiError | undefined = missing.error;
assert.equal(missing.response.status, 404);
assert.equal(notFound?.code, "not_found");
assert.equal(notFound?.status, 404);

// Sync (src/sync.ts, which docs/frontend.md quotes): a local copy kept current from the change feed
// must equal the list after every poll.
const feedStatuses: number[] = []; // of the /api/v1/changes responses of one poll
api.use({
  onResponse({ request, response }) {
    if (new URL(request.url).pathname === "/api/v1/changes") feedStatuses.push(response.status);
  },
});

async function poll(state: SyncState, limit?: number) {
  feedStatuses.length = 0;
  await sync(api, state, limit);
  return [...feedStatuses];
}

async function everyTask() {
  const tasks = new Map<number, Task>();
  for (let offset = 0; ; offset += 100) {
    const { data, error } = await api.GET("/api/v1/tasks", { params: { query: { limit: 100, offset } } });
    assert.ok(data, JSON.stringify(error));
    for (const task of data.results) tasks.set(task.id, task);
    if (!data.next) return tasks;
  }
}

const passport = await create("Renew passport", "medium", ["Paperwork"], null);
await create("Book the dentist", "low", [], null);
await create("Return the library books", "low", [], null);
const listed = await everyTask();
assert.equal(listed.size, 6);

// From scratch, two tasks a page: has_more is followed to the last page.
const state: SyncState = { tasks: new Map() };
assert.deepEqual(await poll(state, 2), [200, 200, 200]);
assert.deepEqual(state.tasks, listed);

// Changes, deletions and creations, a task made and removed between two polls, one changed twice.
await api.PATCH("/api/v1/tasks/{id}", { params: { path: { id: plumber.id } }, body: { completed: true } });
await api.DELETE("/api/v1/tasks/{id}", { params: { path: { id: oatMilk.id } } });
const bike = await create("Fix the bike", "high", ["Home"], null);
const brief = await create("Gone before the poll", "low", [], null);
await api.DELETE("/api/v1/tasks/{id}", { params: { path: { id: brief.id } } });
await api.PATCH("/api/v1/tasks/{id}", { params: { path: { id: passport.id } }, body: { title: "Renew the passport" } });
await api.PATCH("/api/v1/tasks/{id}", { params: { path: { id: passport.id } }, body: { priority: "high" } });
const changedStatuses = await poll(state, 2);
assert.ok(changedStatuses.length > 1 && changedStatuses.every((status) => status === 200), `${changedStatuses}`);
assert.deepEqual(state.tasks, await everyTask());
assert.equal(state.tasks.has(oatMilk.id), false);
assert.equal(state.tasks.get(passport.id)?.priority, "high");

// Nothing new: one empty page with the same cursor, then 304 while nothing changes.
const caughtUp = state.cursor;
assert.deepEqual(await poll(state), [200]);
assert.equal(state.cursor, caughtUp);
assert.deepEqual(await poll(state), [304]);
const notModified = await api.GET("/api/v1/changes", {
  params: { query: { cursor: state.cursor }, header: { "If-None-Match": state.etag } },
});
assert.equal(notModified.response.status, 304);
assert.equal(notModified.data, undefined);
assert.equal(notModified.response.headers.get("ETag"), state.etag);
await api.DELETE("/api/v1/tasks/{id}", { params: { path: { id: bike.id } } });
assert.deepEqual(await poll(state), [200]);
assert.deepEqual(state.tasks, await everyTask());

// A page lost half-way: the pages applied before it stay applied, and the next sync goes on from there.
const resumed: SyncState = { tasks: new Map() };
let requests = 0;
const dropSecond: Middleware = {
  onRequest() {
    if (++requests === 2) throw new TypeError("fetch failed");
  },
};
api.use(dropSecond);
await assert.rejects(sync(api, resumed, 2), TypeError);
api.eject(dropSecond);
assert.equal(resumed.tasks.size, 2);
assert.ok(resumed.cursor);
await sync(api, resumed, 2);
assert.deepEqual(resumed.tasks, state.tasks);

// 410 (changes after the cursor purged): a sync from scratch, which drops what was deleted meanwhile.
state.tasks.set(bike.id, bike);
let expired = 0;
const expireCursor: Middleware = {
  onRequest({ request }) {
    if (!new URL(request.url).searchParams.has("cursor")) return undefined;
    expired++;
    api.eject(expireCursor);
    const body: ApiError = { status: 410, code: "cursor_expired", message: "Start again without a cursor." };
    return Response.json(body, { status: 410 });
  },
};
api.use(expireCursor);
await sync(api, state);
assert.equal(expired, 1);
assert.deepEqual(state.tasks, await everyTask());
assert.equal(state.tasks.has(bike.id), false);

// A kind this client does not know (a later version's) is skipped; the changes after it still apply.
const reminder = { kind: "archive", id: passport.id } as unknown as Change;
const copy: SyncState = { tasks: new Map(state.tasks) };
applyPage(copy, { changes: [reminder, { kind: "delete", id: plumber.id }], cursor: "next", has_more: false });
assert.deepEqual(copy.tasks.get(passport.id), state.tasks.get(passport.id));
assert.equal(copy.tasks.has(plumber.id), false);
assert.equal(copy.tasks.size, state.tasks.size - 1);
assert.equal(copy.cursor, "next");

// A weekly task with a reminder: completing it creates the next occurrence a week on, reminder included.
const weekly = await api.POST("/api/v1/tasks", {
  body: {
    title: "Team sync",
    due_at: "2030-01-07T08:00:00Z", // a Monday, 09:00 in Berlin
    recurrence: "RRULE:FREQ=WEEKLY;BYDAY=MO",
    time_zone: "Europe/Berlin",
    remind_at: "2030-01-07T07:45:00Z",
    tags: ["Work"],
  },
});
assert.equal(weekly.response.status, 201, JSON.stringify(weekly.error));
assert.ok(weekly.data);
assert.equal(weekly.data.recurrence, "FREQ=WEEKLY;BYDAY=MO");
assert.equal(weekly.data.next_occurrence, null);
const done = await api.PATCH("/api/v1/tasks/{id}", {
  params: { path: { id: weekly.data.id } },
  body: { completed: true },
});
assert.ok(done.data, JSON.stringify(done.error));
assert.equal(done.data.completed, true);
const nextId = done.data.next_occurrence;
assert.ok(typeof nextId === "number");
const successor = await api.GET("/api/v1/tasks/{id}", { params: { path: { id: nextId } } });
assert.ok(successor.data, JSON.stringify(successor.error));
assert.equal(successor.data.completed, false);
assert.equal(successor.data.title, "Team sync");
assert.equal(successor.data.due_at, "2030-01-14T08:00:00Z");
assert.equal(successor.data.remind_at, "2030-01-14T07:45:00Z");
assert.equal(successor.data.reminded_at, null);
assert.deepEqual(successor.data.tags, ["Work"]);
assert.equal(successor.data.recurrence, "FREQ=WEEKLY;BYDAY=MO");

console.log("scenario passed");
