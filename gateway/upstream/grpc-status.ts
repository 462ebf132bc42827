// How a gRPC status counts where Envoy needs an HTTP status (outlier detection of trailers-only answers).

const GRPC_TO_HTTP = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/** Envoy Grpc::Utility::grpcToHttpStatus: how a grpc-status in response headers counts for outlier detection. */
export function grpcToHttpStatus(grpcStatus: number): number {
  return GRPC_TO_HTTP[grpcStatus] ?? 500;
}
