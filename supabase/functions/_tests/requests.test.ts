// Unit tests of the handlers' request validation (pure).
import { deepStrictEqual as assertEquals } from "node:assert";
import { parseCheckRequest } from "../entitlement-check/request.ts";
import { parseCheckoutRequest } from "../billing-checkout/request.ts";

const ORG = "e0e00000-0000-4000-8000-00000000000a";

Deno.test("entitlement-check: defaults", () => {
  assertEquals(parseCheckRequest({ org_id: ORG, feature: "ai_runs" }), {
    org_id: ORG,
    feature: "ai_runs",
    quantity: 1,
    consume: false,
    idempotency_key: null,
  });
  assertEquals(
    parseCheckRequest({
      org_id: ORG,
      feature: "ai_runs",
      quantity: 5,
      consume: true,
      idempotency_key: "run-1",
    }),
    {
      org_id: ORG,
      feature: "ai_runs",
      quantity: 5,
      consume: true,
      idempotency_key: "run-1",
    },
  );
});

Deno.test("entitlement-check: each bad field is named", () => {
  const base = { org_id: ORG, feature: "ai_runs" };
  const cases: [Record<string, unknown>, string][] = [
    [{ feature: "ai_runs" }, '"org_id" must be a string'],
    [{ ...base, org_id: 7 }, '"org_id" must be a string'],
    [{ org_id: ORG }, '"feature" must be a string'],
    [{ ...base, quantity: "1" }, '"quantity" must be an integer'],
    [{ ...base, quantity: 1.5 }, '"quantity" must be an integer'],
    [{ ...base, quantity: 2 ** 60 }, '"quantity" must be an integer'],
    [{ ...base, consume: "yes" }, '"consume" must be true or false'],
    [{ ...base, idempotency_key: 12 }, '"idempotency_key" must be a string'],
  ];
  for (const [body, error] of cases) {
    assertEquals(parseCheckRequest(body), { error }, JSON.stringify(body));
  }
  // null is the default, not an error; bounds are the database's (22023)
  assertEquals(
    "error" in parseCheckRequest({ ...base, quantity: null }),
    false,
  );
  assertEquals("error" in parseCheckRequest({ ...base, quantity: -1 }), false);
});

Deno.test("billing-checkout: four strings", () => {
  const good = {
    org_id: ORG,
    plan_id: "pro",
    success_url: "https://app.example/ok",
    cancel_url: "https://app.example/no",
  };
  assertEquals(parseCheckoutRequest({ ...good, extra: 1 }), good);
  for (const f of Object.keys(good)) {
    assertEquals(parseCheckoutRequest({ ...good, [f]: undefined }), {
      error: `"${f}" must be a string`,
    });
    assertEquals(parseCheckoutRequest({ ...good, [f]: 1 }), {
      error: `"${f}" must be a string`,
    });
  }
});
