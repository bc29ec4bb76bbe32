"""The Open Inference Protocol's gRPC definitions: KServe's proto and its generated modules (scripts/gen_grpc.sh)."""
