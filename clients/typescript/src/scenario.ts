// Runs the client against a live API (TODO_API_URL, TODO_API_TOKEN) through the calls a Next.js
// frontend makes; exits non-zero at the first answer that differs from what the schema promised.
import assert from "node:assert/strict";
import { createTodoClient, type ApiError, type Task } from "./client.js";
import type { paths } from "./schema.js";

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
await create("Call the plumber", "high", [], null);
await create("Buy oat milk", "medium", ["Errands"], null);
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

console.log("scenario passed");
