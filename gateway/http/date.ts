// The `date` header value (IMF-fixdate, as Envoy's DateProvider writes it), formatted once per second
// rather than per response.
let cachedSecond = -1;
let cached = '';

export function httpDate(nowMs = Date.now()): string {
  const s = Math.floor(nowMs / 1000);
  if (s !== cachedSecond) {
    cachedSecond = s;
    cached = new Date(s * 1000).toUTCString();
  }
  return cached;
}
