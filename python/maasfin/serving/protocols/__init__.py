"""The three protocols the server speaks, one module each, owning its decode, plan and answer.

- simple.py:    POST /v1/predict and /v1/explain, {"model_name", "input_data": record(s) or rows};
- tfserving.py: TensorFlow Serving's REST API, /v1/models/{name}[...]:predict, status, metadata;
- v2.py:        the Open Inference Protocol v2 (KServe), /v2/..., with binary tensors;
- v2_raw.py:    its tensors for raw-feature models (one per feature, BYTES strings, missing values).

Each module lists its endpoints in `ENDPOINTS` (routes.py puts them in one table). A request is
decoded against the served model's public signature (`model.signature`) with the JSON and tensor
helpers of codec.py, planned with `Service.plan` (which leases the model version), and answered by
the protocol's `Answer` (`encode(y)`, `explanation(...)`), which has no side effects.
"""
