// Headers as the proxy carries them: one flat [name, value, name, value, ...] array with lowercase names,
// in wire order, a name repeated when the header is. Envoy's HeaderMap offers several readings of a repeated
// header and each caller uses the one Envoy uses at that place, so each reading has its own name here.

/** Index of the first `name` entry (its name slot), or -1. */
export function headerIndex(headers: readonly string[], name: string): number {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return i;
  return -1;
}

/**
 * The first value of `name`, or undefined (Envoy `HeaderMap::get(name)[0]`: what ORIGINAL_DST's
 * use_http_header reads).
 */
export function firstHeaderValue(headers: readonly string[], name: string): string | undefined {
  const i = headerIndex(headers, name);
  return i < 0 ? undefined : (headers[i + 1] ?? '');
}

/**
 * Every value of `name` joined with ',' in order, or undefined (Envoy HeaderUtility::getAllOfHeaderAsString:
 * what route header matchers see). The header hash policy and the CORS filter read request headers this way too.
 */
export function joinedHeaderValue(headers: readonly string[], name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === name) {
      const v = headers[i + 1] ?? '';
      out = out === undefined ? v : out + ',' + v;
    }
  }
  return out;
}

/** Removes every `name` entry at or after index `from`, in place. */
export function removeHeader(headers: string[], name: string, from = 0): void {
  for (let i = headers.length - 2; i >= from; i -= 2) if (headers[i] === name) headers.splice(i, 2);
}

/**
 * Envoy `HeaderMap::setCopy`: the first `name` entry takes `value` in place and the later ones are removed;
 * appended when absent.
 */
export function setHeader(headers: string[], name: string, value: string): void {
  const i = headerIndex(headers, name);
  if (i < 0) {
    headers.push(name, value);
    return;
  }
  headers[i + 1] = value;
  removeHeader(headers, name, i + 2);
}
