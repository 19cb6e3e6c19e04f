/** Standard base64 (RFC 4648, with padding), for byte payloads carried in JSON. */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Encodes `data` as base64 text. */
export function encodeBase64(data: ArrayBuffer): string {
  const b = Uint8Array.wrap(data);
  const n = b.length;
  let out = "";
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (<u32>b[i] << 16) | (<u32>b[i + 1] << 8) | <u32>b[i + 2];
    out += ALPHABET.charAt(v >> 18) + ALPHABET.charAt((v >> 12) & 63) +
      ALPHABET.charAt((v >> 6) & 63) + ALPHABET.charAt(v & 63);
  }
  if (n - i == 1) {
    const v = <u32>b[i] << 16;
    out += ALPHABET.charAt(v >> 18) + ALPHABET.charAt((v >> 12) & 63) + "==";
  } else if (n - i == 2) {
    const v = (<u32>b[i] << 16) | (<u32>b[i + 1] << 8);
    out += ALPHABET.charAt(v >> 18) + ALPHABET.charAt((v >> 12) & 63) +
      ALPHABET.charAt((v >> 6) & 63) + "=";
  }
  return out;
}

function sextet(c: i32): i32 {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c == 43 || c == 45) return 62;
  if (c == 47 || c == 95) return 63;
  return -1;
}

/** Decodes base64 (standard or URL-safe, padding optional); null when malformed. */
export function decodeBase64(text: string): ArrayBuffer | null {
  let len = text.length;
  while (len > 0 && text.charCodeAt(len - 1) == 61) len--;
  if (len % 4 == 1) return null;
  const out = new ArrayBuffer((len * 3) >> 2);
  const b = Uint8Array.wrap(out);
  let acc: u32 = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < len; i++) {
    const v = sextet(text.charCodeAt(i));
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      b[j++] = <u8>((acc >> bits) & 0xff);
    }
  }
  return out;
}
