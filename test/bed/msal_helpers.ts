/**
 * What the fake Entra ID's own tests share when they drive real msal-node
 * against it: a network client that trusts the test CA and refuses every
 * other host, and small assertions.
 */
import assert from "node:assert/strict";
import {
  AuthError,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from "@azure/msal-node";
import type { FakeEntra } from "./entra.ts";

export interface TestNetwork {
  network: INetworkModule;
  /** Every JSON body received: msal drops device-code error descriptions, tests read them here. */
  bodies: Record<string, unknown>[];
  close(): void;
}

/**
 * msal's network client over a fetch that trusts the test CA. It refuses every host but the fake,
 * so a test can never reach login.microsoftonline.com (msal's instance discovery host).
 */
export function testNetwork(caPem: string, entra: FakeEntra): TestNetwork {
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  const bodies: Record<string, unknown>[] = [];
  async function send<T>(
    method: string,
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    if (new URL(url).host !== entra.host) throw new Error(`test refused a request to ${url}`);
    const res = await fetch(url, {
      method,
      headers: options?.headers,
      body: method === "POST" ? options?.body ?? "" : undefined,
      client,
    });
    const body = await res.json();
    bodies.push(body);
    return { headers: Object.fromEntries(res.headers), body: body as T, status: res.status };
  }
  return {
    network: {
      sendGetRequestAsync: (url, options) => send("GET", url, options),
      sendPostRequestAsync: (url, options) => send("POST", url, options),
    },
    bodies,
    close: () => client.close(),
  };
}

/** The error msal rejected with; fails when it did not reject or rejected with a non-msal error. */
export async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof AuthError, `expected an msal AuthError, got ${e}`);
    return e;
  }
  assert.fail("expected msal to reject");
}

/** The fake's requests as `METHOD /path`. */
export function paths(entra: FakeEntra): string[] {
  return entra.requests.map((r) => `${r.method} ${r.path}`);
}

/** Dovecot 2.3 crashes on a JSON null anywhere in the claims. */
export function assertNoNull(value: unknown, where = "payload"): void {
  assert.notEqual(value, null, `${where} is null`);
  if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) assertNoNull(v, `${where}.${k}`);
  }
}
