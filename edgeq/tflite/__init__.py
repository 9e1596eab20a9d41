"""The TFLite flatbuffer format: a verifying reader, a writer for small models, and the schema."""
from edgeq.tflite.reader import (DimMetadata, Model, Operator, OperatorCode, Quantization,
                                 SignatureDef, Sparsity, Subgraph, Tensor, read_model)
from edgeq.tflite.schema import (NUMPY_DTYPE, OPTIONS, OPTIONS_FOR_OP, TENSOR_TYPE_OF, Activation,
                                 BuiltinOp, BuiltinOptions2Type, BuiltinOptionsType, CombinerType,
                                 DimensionType, FullyConnectedWeightsFormat, LSHProjectionType,
                                 LSTMKernelType, MirrorPadMode, Padding, QuantizationDetailsType,
                                 SparseIndexVectorType, TensorType)

__all__ = [
    "read_model", "ModelBuilder", "Model", "Subgraph", "Tensor", "Operator", "OperatorCode",
    "Quantization", "Sparsity", "DimMetadata", "SignatureDef",
    "BuiltinOp", "TensorType", "Padding", "Activation", "MirrorPadMode", "BuiltinOptionsType",
    "BuiltinOptions2Type", "FullyConnectedWeightsFormat", "LSHProjectionType", "LSTMKernelType",
    "CombinerType", "DimensionType", "QuantizationDetailsType", "SparseIndexVectorType",
    "NUMPY_DTYPE", "TENSOR_TYPE_OF", "OPTIONS", "OPTIONS_FOR_OP",
]


def __getattr__(name):
    # The writer (and the flatbuffers package it builds with) only on first use: loading and
    # running a model never writes one, and the import is a sizeable part of startup.
    if name == "ModelBuilder":
        from edgeq.tflite.writer import ModelBuilder

        return ModelBuilder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
