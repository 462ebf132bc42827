// Envoy's mappings between HTTP and gRPC statuses (Grpc::Utility): how a gRPC status counts where Envoy needs an
// HTTP status (outlier detection of trailers-only answers), and the gRPC status of an answer that carried none.

const GRPC_TO_HTTP = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/** Envoy Grpc::Utility::grpcToHttpStatus: how a grpc-status in response headers counts for outlier detection. */
export function grpcToHttpStatus(grpcStatus: number): number {
  return GRPC_TO_HTTP[grpcStatus] ?? 500;
}

/** Envoy's Grpc::Utility::httpToGrpcStatus: local replies to gRPC requests, and Istio's grpc_response_status label. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}
