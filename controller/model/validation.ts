// A validation error is a value, collected and reported (log line; in Kubernetes also an Event and a status
// condition on the object), never an exception that unwinds a whole push.
import type { Origin } from './objects.ts';

export interface ValidationError {
  kind: string;
  namespace: string;
  name: string;
  origin: Origin;
  /** Field path inside the object, e.g. `spec.http[0].match[1].uri.regex`. */
  field?: string;
  message: string;
}

/** Receives validation errors; the local source logs them, the Kubernetes source also records Events. */
export interface ErrorReporter {
  report(errors: readonly ValidationError[]): void;
}

export function formatError(e: ValidationError): string {
  const where = e.origin.file ? `${e.origin.file}: ` : '';
  const field = e.field ? ` at ${e.field}` : '';
  return `${where}${e.kind} ${e.namespace}/${e.name}${field}: ${e.message}`;
}
