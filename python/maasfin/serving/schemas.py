"""pydantic descriptions of the request and response bodies, for the OpenAPI document and /docs.

The server validates bodies with the protocol modules (protocols/, against the model loaded at
request time); these models only document the shapes. Keep the two in step.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Number = float
Row = list[Number]
Record = dict[str, Number]


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong, naming the field or element")


class SimplePredictRequest(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {"model_name": "credit", "input_data": {"income": 52000, "debt": 0.31, "age": 41, "score": 0.7}},
                {"model_name": "credit", "model_version": "stable", "input_data": [[0.1, 1.2, -0.3, 0.0]]},
            ]
        },
        "protected_namespaces": (),
    }
    model_name: str = Field(description="A model in the repository")
    model_version: int | str | None = Field(
        None, description="A version number or a label (labels.json); default: the newest version"
    )
    input_data: Record | list[Record] | list[Row] | dict[str, list[Row]] = Field(
        description="One record keyed by feature name, a list of records, a list of rows (lists of numbers "
        "in the model's feature order), or for a multi-input model an object of rows per input"
    )
    routing_key: str | None = Field(
        None,
        description="Routes a request that names no version by the model's traffic policy: the same key "
        "always gets the same version (also the header X-Routing-Key)",
    )


class SimplePredictResponse(BaseModel):
    model_config = {"protected_namespaces": ()}
    model_name: str
    model_version: int
    predictions: list[Any] = Field(description="One output per row, in request order")
    request_id: str = Field(description="Also the X-Request-ID header; outcomes address rows by it (POST /v1/outcomes)")


class TFPredictRequest(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [{"instances": [[0.1, 1.2, -0.3, 0.0]]}, {"inputs": {"input_layer": [[0.1, 1.2, -0.3, 0.0]]}}]
        }
    }
    signature_name: str | None = Field(None, description="Only 'serving_default'")
    instances: list[Any] | None = Field(
        None,
        description="Row format: one element per row (a list of numbers, or an object keyed by input or feature name)",
    )
    inputs: list[Any] | dict[str, Any] | None = Field(
        None,
        description="Columnar format: a tensor, or an object keyed by input name (or by feature name, "
        "one list of values per feature)",
    )


class TFPredictResponse(BaseModel):
    predictions: list[Any] | None = Field(None, description="For 'instances' requests")
    outputs: list[Any] | None = Field(None, description="For 'inputs' requests")


class TFVersionStatus(BaseModel):
    version: str
    state: str = Field(description="AVAILABLE, or END for a version that failed to load")
    status: dict[str, str]


class TFStatusResponse(BaseModel):
    model_version_status: list[TFVersionStatus]


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="FP32 (also FP64, FP16, INT8-64, UINT8-64, converted to FP32)")
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size for binary tensors")
    data: list[Any] | None = Field(None, description="Row-major values, flat or nested")


class V2RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(None, description="binary_data: true for a binary output")


class V2InferRequest(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "inputs": [
                        {"name": "input_layer", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 1.2, -0.3, 0.0]}
                    ]
                }
            ]
        }
    }
    id: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="binary_data_output: true for binary outputs")
    inputs: list[V2Tensor]
    outputs: list[V2RequestedOutput] | None = None


class V2InferResponse(BaseModel):
    model_config = {"protected_namespaces": ()}
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    parameters: dict[str, Any] | None = None


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


REQUEST_MODELS = (SimplePredictRequest, TFPredictRequest, V2InferRequest)
