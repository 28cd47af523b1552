// Unit tests of ../_shared/http.ts: SQLSTATE -> HTTP status mapping and
// request body parsing (deno test, no database).
import { deepStrictEqual as assertEquals } from "node:assert";
import {
  errorResponse,
  jsonObject,
  sqlstate,
  statusFor,
} from "../_shared/http.ts";
import { CHECK_STATUS } from "../entitlement-check/request.ts";
import { CHECKOUT_STATUS } from "../billing-checkout/request.ts";

const pgError = (code: string, message = "boom", detail?: string) =>
  Object.assign(new Error(message), { code, detail });

Deno.test("sqlstate: five-character codes of database errors only", () => {
  assertEquals(sqlstate(pgError("IP001")), "IP001");
  assertEquals(sqlstate(pgError("22023")), "22023");
  assertEquals(sqlstate(pgError("ECONNREFUSED")), undefined);
  assertEquals(sqlstate(new Error("plain")), undefined);
  assertEquals(sqlstate(null), undefined);
  assertEquals(sqlstate({ code: 42 }), undefined);
});

Deno.test("entitlement-check: SPEC section 8 statuses", () => {
  assertEquals(statusFor(pgError("IP001"), CHECK_STATUS), 403);
  assertEquals(statusFor(pgError("IP005"), CHECK_STATUS), 403);
  assertEquals(statusFor(pgError("42501"), CHECK_STATUS), 403);
  assertEquals(statusFor(pgError("22023"), CHECK_STATUS), 400);
  assertEquals(statusFor(pgError("22P02"), CHECK_STATUS), 400);
  assertEquals(statusFor(pgError("40001"), CHECK_STATUS), 500);
  assertEquals(statusFor(pgError("ECONNREFUSED"), CHECK_STATUS), 500);
  assertEquals(statusFor(new TypeError("x"), CHECK_STATUS), 500);
});

Deno.test("billing-checkout and stripe-webhook statuses", () => {
  assertEquals(statusFor(pgError("42501"), CHECKOUT_STATUS), 403);
  assertEquals(statusFor(pgError("22023"), CHECKOUT_STATUS), 400);
  assertEquals(statusFor(pgError("IP001"), CHECKOUT_STATUS), 500);
  assertEquals(statusFor(pgError("IP002"), { IP002: 400 }), 400);
  // an inherited property is not a mapping
  assertEquals(statusFor(pgError("toString"), {}), 500);
});

Deno.test("errorResponse: message, detail and SQLSTATE, never a stack", async () => {
  const res = errorResponse(
    pgError("IP001", "usage limit reached", "Current usage is 100 of 100."),
    CHECK_STATUS,
  );
  assertEquals(res.status, 403);
  assertEquals(res.headers.get("content-type"), "application/json");
  assertEquals(await res.json(), {
    error: "usage limit reached",
    detail: "Current usage is 100 of 100.",
    sqlstate: "IP001",
  });
});

Deno.test("jsonObject: only a JSON object passes", async () => {
  const req = (body: string) =>
    new Request("http://x/", { method: "POST", body });
  assertEquals(await jsonObject(req('{"a":1}')), { a: 1 });
  for (const bad of ["", "nope", "[1]", "null", "3", '"s"']) {
    const r = await jsonObject(req(bad));
    assertEquals(r instanceof Response && r.status, 400, `body ${bad}`);
  }
});
