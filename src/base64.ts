/**
 * Base64 for bytes, without node:buffer (which costs start-up time to load). The runtime's own
 * `Uint8Array.fromBase64`/`toBase64` are used when present: a decoding loop in JavaScript runs
 * cold on every start (the tool is a short process), and `Uint8Array.from(atob(...), fn)` cost
 * ~10 ms for one certificate.
 */

interface Base64Native {
  fromBase64?: (text: string) => Uint8Array;
}
interface Base64Bytes {
  toBase64?: () => string;
}

const native = Uint8Array as unknown as Base64Native;

/** Standard base64 with padding. Works in chunks, so large inputs do not overflow the stack. */
export function base64(bytes: Uint8Array): string {
  const own = (bytes as unknown as Base64Bytes).toBase64;
  if (own) return own.call(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** base64url without padding, as JWTs and Entra's thumbprint messages write it. */
export function base64url(bytes: Uint8Array): string {
  return base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of standard base64 text; throws (as `atob`) when it is not base64. */
export function fromBase64(text: string): Uint8Array {
  if (native.fromBase64) {
    try {
      return native.fromBase64(text);
    } catch {
      // atob is more forgiving (e.g. padding in the middle of concatenated chunks): its verdict
      // decides, as before.
    }
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
