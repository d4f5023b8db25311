// The typed client: openapi-fetch over the types openapi-typescript generates from the API's schema
// (src/schema.d.ts, made by `npm run generate`; never edited by hand).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type Task = components["schemas"]["Task"];
export type ApiError = components["schemas"]["Error"];

/** A client that sends the Better Auth JWT `getToken` returns with every request. */
export function createTodoClient(baseUrl: string, getToken: () => Promise<string> | string) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await getToken()}`);
      return request;
    },
  });
  return client;
}
