import assert from "node:assert/strict";
import { isLoopbackRedirect, parseRedirectedAddress } from "./user.ts";
import { TokenError } from "../errors.ts";

Deno.test("isLoopbackRedirect() accepts only http loopback addresses", () => {
  for (const uri of ["http://localhost", "http://localhost:8400/cb", "http://127.0.0.1:5000"]) {
    assert.equal(isLoopbackRedirect(uri), true, uri);
  }
  for (
    const uri of [
      "https://localhost",
      "https://login.microsoftonline.com/common/oauth2/nativeclient",
      "http://example.com",
      "not a uri",
    ]
  ) {
    assert.equal(isLoopbackRedirect(uri), false, uri);
  }
});

Deno.test("parseRedirectedAddress() returns the code when the state matches", () => {
  assert.deepEqual(parseRedirectedAddress("https://localhost/?code=abc&state=s1", "s1"), {
    code: "abc",
  });
  assert.deepEqual(parseRedirectedAddress("  https://localhost/#code=abc&state=s1\n", "s1"), {
    code: "abc",
  });
});

Deno.test("parseRedirectedAddress() rejects another sign-in's state, no code, and garbage", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof TokenError);
      return e.code;
    }
    throw new Error("did not throw");
  };
  assert.equal(
    code(() => parseRedirectedAddress("https://localhost/?code=a&state=x", "s1")),
    "STATE_MISMATCH",
  );
  assert.equal(
    code(() => parseRedirectedAddress("https://localhost/?state=s1", "s1")),
    "BAD_REDIRECT_ADDRESS",
  );
  assert.equal(code(() => parseRedirectedAddress("no address", "s1")), "BAD_REDIRECT_ADDRESS");
});

Deno.test("parseRedirectedAddress() reports Entra's error with its AADSTS code", () => {
  assert.throws(
    () =>
      parseRedirectedAddress(
        "https://localhost/?error=invalid_request&error_description=AADSTS50011%3A+The+redirect+URI+does+not+match.+Trace+ID%3A+x",
        "s1",
      ),
    (e) => e instanceof TokenError && e.code === "AADSTS50011" && !/Trace ID/.test(e.message),
  );
});
