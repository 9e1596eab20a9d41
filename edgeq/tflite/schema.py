"""The TFLite flatbuffer format as data: enums, dtype maps and the builtin options tables.

This module is the single source of truth for the format; edgeq.tflite.reader and
edgeq.tflite.writer both read their slots, defaults and value checks from here, so the two can
never disagree.

Source: TensorFlow Lite's schema.fbs (tensorflow/lite/schema/schema.fbs; LiteRT keeps the same
file as tflite/converter/schema/schema.fbs), the version LiteRT 2.3 ships (BuiltinOperator up to
STABLEHLO_CASE = 209, TensorType up to FLOAT8_E5M2 = 22). Written from the schema text, not
generated. Flatbuffer rules used throughout: a table's field number k ("slot") sits at vtable
offset 4 + 2k; a union field takes two slots, the type tag first (slot k, ubyte) and the table
offset second (slot k + 1); deprecated fields keep their slot.
"""
from __future__ import annotations

import enum
from typing import Any, NamedTuple, Optional

import numpy as np


class BuiltinOp(enum.IntEnum):
    """schema.fbs `enum BuiltinOperator : int32` — every builtin operator code."""

    ADD = 0
    AVERAGE_POOL_2D = 1
    CONCATENATION = 2
    CONV_2D = 3
    DEPTHWISE_CONV_2D = 4
    DEPTH_TO_SPACE = 5
    DEQUANTIZE = 6
    EMBEDDING_LOOKUP = 7
    FLOOR = 8
    FULLY_CONNECTED = 9
    HASHTABLE_LOOKUP = 10
    L2_NORMALIZATION = 11
    L2_POOL_2D = 12
    LOCAL_RESPONSE_NORMALIZATION = 13
    LOGISTIC = 14
    LSH_PROJECTION = 15
    LSTM = 16
    MAX_POOL_2D = 17
    MUL = 18
    RELU = 19
    RELU_N1_TO_1 = 20
    RELU6 = 21
    RESHAPE = 22
    RESIZE_BILINEAR = 23
    RNN = 24
    SOFTMAX = 25
    SPACE_TO_DEPTH = 26
    SVDF = 27
    TANH = 28
    CONCAT_EMBEDDINGS = 29
    SKIP_GRAM = 30
    CALL = 31
    CUSTOM = 32
    EMBEDDING_LOOKUP_SPARSE = 33
    PAD = 34
    UNIDIRECTIONAL_SEQUENCE_RNN = 35
    GATHER = 36
    BATCH_TO_SPACE_ND = 37
    SPACE_TO_BATCH_ND = 38
    TRANSPOSE = 39
    MEAN = 40
    SUB = 41
    DIV = 42
    SQUEEZE = 43
    UNIDIRECTIONAL_SEQUENCE_LSTM = 44
    STRIDED_SLICE = 45
    BIDIRECTIONAL_SEQUENCE_RNN = 46
    EXP = 47
    TOPK_V2 = 48
    SPLIT = 49
    LOG_SOFTMAX = 50
    DELEGATE = 51
    BIDIRECTIONAL_SEQUENCE_LSTM = 52
    CAST = 53
    PRELU = 54
    MAXIMUM = 55
    ARG_MAX = 56
    MINIMUM = 57
    LESS = 58
    NEG = 59
    PADV2 = 60
    GREATER = 61
    GREATER_EQUAL = 62
    LESS_EQUAL = 63
    SELECT = 64
    SLICE = 65
    SIN = 66
    TRANSPOSE_CONV = 67
    SPARSE_TO_DENSE = 68
    TILE = 69
    EXPAND_DIMS = 70
    EQUAL = 71
    NOT_EQUAL = 72
    LOG = 73
    SUM = 74
    SQRT = 75
    RSQRT = 76
    SHAPE = 77
    POW = 78
    ARG_MIN = 79
    FAKE_QUANT = 80
    REDUCE_PROD = 81
    REDUCE_MAX = 82
    PACK = 83
    LOGICAL_OR = 84
    ONE_HOT = 85
    LOGICAL_AND = 86
    LOGICAL_NOT = 87
    UNPACK = 88
    REDUCE_MIN = 89
    FLOOR_DIV = 90
    REDUCE_ANY = 91
    SQUARE = 92
    ZEROS_LIKE = 93
    FILL = 94
    FLOOR_MOD = 95
    RANGE = 96
    RESIZE_NEAREST_NEIGHBOR = 97
    LEAKY_RELU = 98
    SQUARED_DIFFERENCE = 99
    MIRROR_PAD = 100
    ABS = 101
    SPLIT_V = 102
    UNIQUE = 103
    CEIL = 104
    REVERSE_V2 = 105
    ADD_N = 106
    GATHER_ND = 107
    COS = 108
    WHERE = 109
    RANK = 110
    ELU = 111
    REVERSE_SEQUENCE = 112
    MATRIX_DIAG = 113
    QUANTIZE = 114
    MATRIX_SET_DIAG = 115
    ROUND = 116
    HARD_SWISH = 117
    IF = 118
    WHILE = 119
    NON_MAX_SUPPRESSION_V4 = 120
    NON_MAX_SUPPRESSION_V5 = 121
    SCATTER_ND = 122
    SELECT_V2 = 123
    DENSIFY = 124
    SEGMENT_SUM = 125
    BATCH_MATMUL = 126
    # deprecated_builtin_code (an int8) holds this for every code above 127; the real code is in
    # OperatorCode.builtin_code.
    PLACEHOLDER_FOR_GREATER_OP_CODES = 127
    CUMSUM = 128
    CALL_ONCE = 129
    BROADCAST_TO = 130
    RFFT2D = 131
    CONV_3D = 132
    IMAG = 133
    REAL = 134
    COMPLEX_ABS = 135
    HASHTABLE = 136
    HASHTABLE_FIND = 137
    HASHTABLE_IMPORT = 138
    HASHTABLE_SIZE = 139
    REDUCE_ALL = 140
    CONV_3D_TRANSPOSE = 141
    VAR_HANDLE = 142
    READ_VARIABLE = 143
    ASSIGN_VARIABLE = 144
    BROADCAST_ARGS = 145
    RANDOM_STANDARD_NORMAL = 146
    BUCKETIZE = 147
    RANDOM_UNIFORM = 148
    MULTINOMIAL = 149
    GELU = 150
    DYNAMIC_UPDATE_SLICE = 151
    RELU_0_TO_1 = 152
    UNSORTED_SEGMENT_PROD = 153
    UNSORTED_SEGMENT_MAX = 154
    UNSORTED_SEGMENT_SUM = 155
    ATAN2 = 156
    UNSORTED_SEGMENT_MIN = 157
    SIGN = 158
    BITCAST = 159
    BITWISE_XOR = 160
    RIGHT_SHIFT = 161
    STABLEHLO_LOGISTIC = 162
    STABLEHLO_ADD = 163
    STABLEHLO_DIVIDE = 164
    STABLEHLO_MULTIPLY = 165
    STABLEHLO_MAXIMUM = 166
    STABLEHLO_RESHAPE = 167
    STABLEHLO_CLAMP = 168
    STABLEHLO_CONCATENATE = 169
    STABLEHLO_BROADCAST_IN_DIM = 170
    STABLEHLO_CONVOLUTION = 171
    STABLEHLO_SLICE = 172
    STABLEHLO_CUSTOM_CALL = 173
    STABLEHLO_REDUCE = 174
    STABLEHLO_ABS = 175
    STABLEHLO_AND = 176
    STABLEHLO_COSINE = 177
    STABLEHLO_EXPONENTIAL = 178
    STABLEHLO_FLOOR = 179
    STABLEHLO_LOG = 180
    STABLEHLO_MINIMUM = 181
    STABLEHLO_NEGATE = 182
    STABLEHLO_OR = 183
    STABLEHLO_POWER = 184
    STABLEHLO_REMAINDER = 185
    STABLEHLO_RSQRT = 186
    STABLEHLO_SELECT = 187
    STABLEHLO_SUBTRACT = 188
    STABLEHLO_TANH = 189
    STABLEHLO_SCATTER = 190
    STABLEHLO_COMPARE = 191
    STABLEHLO_CONVERT = 192
    STABLEHLO_DYNAMIC_SLICE = 193
    STABLEHLO_DYNAMIC_UPDATE_SLICE = 194
    STABLEHLO_PAD = 195
    STABLEHLO_IOTA = 196
    STABLEHLO_DOT_GENERAL = 197
    STABLEHLO_REDUCE_WINDOW = 198
    STABLEHLO_SORT = 199
    STABLEHLO_WHILE = 200
    STABLEHLO_GATHER = 201
    STABLEHLO_TRANSPOSE = 202
    DILATE = 203
    STABLEHLO_RNG_BIT_GENERATOR = 204
    REDUCE_WINDOW = 205  # deprecated in the schema
    STABLEHLO_COMPOSITE = 206
    STABLEHLO_SHIFT_LEFT = 207
    STABLEHLO_CBRT = 208
    STABLEHLO_CASE = 209


class TensorType(enum.IntEnum):
    """schema.fbs `enum TensorType : byte`."""

    FLOAT32 = 0
    FLOAT16 = 1
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    STRING = 5
    BOOL = 6
    INT16 = 7
    COMPLEX64 = 8
    INT8 = 9
    FLOAT64 = 10
    COMPLEX128 = 11
    UINT64 = 12
    RESOURCE = 13
    VARIANT = 14
    UINT32 = 15
    UINT16 = 16
    INT4 = 17
    BFLOAT16 = 18
    INT2 = 19
    UINT4 = 20
    FLOAT8_E4M3FN = 21
    FLOAT8_E5M2 = 22


# numpy dtype of each TensorType numpy can hold element by element. Absent: STRING (variable-length
# records), RESOURCE and VARIANT (handles, no data), BFLOAT16 and the FLOAT8 types (numpy has no
# such dtype). INT4 / UINT4 / INT2 are stored packed, two or four values to a byte, so no numpy
# dtype views them: they map to None (look them up with .get()).
NUMPY_DTYPE: dict = {
    TensorType.FLOAT32: np.dtype(np.float32),
    TensorType.FLOAT16: np.dtype(np.float16),
    TensorType.INT32: np.dtype(np.int32),
    TensorType.UINT8: np.dtype(np.uint8),
    TensorType.INT64: np.dtype(np.int64),
    TensorType.BOOL: np.dtype(np.bool_),
    TensorType.INT16: np.dtype(np.int16),
    TensorType.COMPLEX64: np.dtype(np.complex64),
    TensorType.INT8: np.dtype(np.int8),
    TensorType.FLOAT64: np.dtype(np.float64),
    TensorType.COMPLEX128: np.dtype(np.complex128),
    TensorType.UINT64: np.dtype(np.uint64),
    TensorType.UINT32: np.dtype(np.uint32),
    TensorType.UINT16: np.dtype(np.uint16),
    TensorType.INT4: None,
    TensorType.UINT4: None,
    TensorType.INT2: None,
}

# Bytes a buffer must hold for `n` elements of the types numpy has no dtype for, where that size
# is fixed (STRING, RESOURCE and VARIANT have none).
PACKED_NBYTES = {
    TensorType.INT4: lambda n: (n + 1) // 2,
    TensorType.UINT4: lambda n: (n + 1) // 2,
    TensorType.INT2: lambda n: (n + 3) // 4,
    TensorType.BFLOAT16: lambda n: 2 * n,
    TensorType.FLOAT8_E4M3FN: lambda n: n,
    TensorType.FLOAT8_E5M2: lambda n: n,
}


class _DtypeKeyed(dict):
    """A dict keyed by np.dtype that also accepts scalar types and dtype strings
    (TENSOR_TYPE_OF[np.float32] and TENSOR_TYPE_OF["float32"] work, not only np.dtype keys)."""

    def __missing__(self, key):
        if isinstance(key, np.dtype):
            raise KeyError(key)
        try:
            dtype = np.dtype(key)
        except TypeError:
            raise KeyError(key) from None
        return self[dtype]


# TensorType code of each numpy dtype that has one.
TENSOR_TYPE_OF: dict = _DtypeKeyed(
    {dtype: int(code) for code, dtype in NUMPY_DTYPE.items() if dtype is not None})


class Padding(enum.IntEnum):
    SAME = 0
    VALID = 1


class Activation(enum.IntEnum):
    """schema.fbs `enum ActivationFunctionType : byte` (fused_activation_function)."""

    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3
    TANH = 4
    SIGN_BIT = 5


class MirrorPadMode(enum.IntEnum):
    REFLECT = 0
    SYMMETRIC = 1


class FullyConnectedWeightsFormat(enum.IntEnum):
    """schema.fbs `enum FullyConnectedOptionsWeightsFormat : byte`."""

    DEFAULT = 0
    SHUFFLED4x16INT8 = 1


class LSHProjectionType(enum.IntEnum):
    UNKNOWN = 0
    SPARSE = 1
    DENSE = 2


class LSTMKernelType(enum.IntEnum):
    FULL = 0
    BASIC = 1


class CombinerType(enum.IntEnum):
    SUM = 0
    MEAN = 1
    SQRTN = 2


class DimensionType(enum.IntEnum):
    """Storage of one level of a sparse tensor (DimensionMetadata.format)."""

    DENSE = 0
    SPARSE_CSR = 1


class CustomOptionsFormat(enum.IntEnum):
    FLEXBUFFERS = 0


class QuantizationDetailsType(enum.IntEnum):
    """schema.fbs `union QuantizationDetails` type tags."""

    NONE = 0
    CustomQuantization = 1
    BlockwiseQuantization = 2
    MultiAxisQuantization = 3


class SparseIndexVectorType(enum.IntEnum):
    """schema.fbs `union SparseIndexVector` type tags."""

    NONE = 0
    Int32Vector = 1
    Uint16Vector = 2
    Uint8Vector = 3


class BuiltinOptionsType(enum.IntEnum):
    """schema.fbs `union BuiltinOptions` type tags (Operator.builtin_options_type).
    The schema freezes this union at RightShiftOptions; newer options go to BuiltinOptions2."""

    NONE = 0
    Conv2DOptions = 1
    DepthwiseConv2DOptions = 2
    ConcatEmbeddingsOptions = 3
    LSHProjectionOptions = 4
    Pool2DOptions = 5
    SVDFOptions = 6
    RNNOptions = 7
    FullyConnectedOptions = 8
    SoftmaxOptions = 9
    ConcatenationOptions = 10
    AddOptions = 11
    L2NormOptions = 12
    LocalResponseNormalizationOptions = 13
    LSTMOptions = 14
    ResizeBilinearOptions = 15
    CallOptions = 16
    ReshapeOptions = 17
    SkipGramOptions = 18
    SpaceToDepthOptions = 19
    EmbeddingLookupSparseOptions = 20
    MulOptions = 21
    PadOptions = 22
    GatherOptions = 23
    BatchToSpaceNDOptions = 24
    SpaceToBatchNDOptions = 25
    TransposeOptions = 26
    ReducerOptions = 27
    SubOptions = 28
    DivOptions = 29
    SqueezeOptions = 30
    SequenceRNNOptions = 31
    StridedSliceOptions = 32
    ExpOptions = 33
    TopKV2Options = 34
    SplitOptions = 35
    LogSoftmaxOptions = 36
    CastOptions = 37
    DequantizeOptions = 38
    MaximumMinimumOptions = 39
    ArgMaxOptions = 40
    LessOptions = 41
    NegOptions = 42
    PadV2Options = 43
    GreaterOptions = 44
    GreaterEqualOptions = 45
    LessEqualOptions = 46
    SelectOptions = 47
    SliceOptions = 48
    TransposeConvOptions = 49
    SparseToDenseOptions = 50
    TileOptions = 51
    ExpandDimsOptions = 52
    EqualOptions = 53
    NotEqualOptions = 54
    ShapeOptions = 55
    PowOptions = 56
    ArgMinOptions = 57
    FakeQuantOptions = 58
    PackOptions = 59
    LogicalOrOptions = 60
    OneHotOptions = 61
    LogicalAndOptions = 62
    LogicalNotOptions = 63
    UnpackOptions = 64
    FloorDivOptions = 65
    SquareOptions = 66
    ZerosLikeOptions = 67
    FillOptions = 68
    BidirectionalSequenceLSTMOptions = 69
    BidirectionalSequenceRNNOptions = 70
    UnidirectionalSequenceLSTMOptions = 71
    FloorModOptions = 72
    RangeOptions = 73
    ResizeNearestNeighborOptions = 74
    LeakyReluOptions = 75
    SquaredDifferenceOptions = 76
    MirrorPadOptions = 77
    AbsOptions = 78
    SplitVOptions = 79
    UniqueOptions = 80
    ReverseV2Options = 81
    AddNOptions = 82
    GatherNdOptions = 83
    CosOptions = 84
    WhereOptions = 85
    RankOptions = 86
    ReverseSequenceOptions = 87
    MatrixDiagOptions = 88
    QuantizeOptions = 89
    MatrixSetDiagOptions = 90
    HardSwishOptions = 91
    IfOptions = 92
    WhileOptions = 93
    DepthToSpaceOptions = 94
    NonMaxSuppressionV4Options = 95
    NonMaxSuppressionV5Options = 96
    ScatterNdOptions = 97
    SelectV2Options = 98
    DensifyOptions = 99
    SegmentSumOptions = 100
    BatchMatMulOptions = 101
    CumsumOptions = 102
    CallOnceOptions = 103
    BroadcastToOptions = 104
    Rfft2dOptions = 105
    Conv3DOptions = 106
    HashtableOptions = 107
    HashtableFindOptions = 108
    HashtableImportOptions = 109
    HashtableSizeOptions = 110
    VarHandleOptions = 111
    ReadVariableOptions = 112
    AssignVariableOptions = 113
    RandomOptions = 114
    BucketizeOptions = 115
    GeluOptions = 116
    DynamicUpdateSliceOptions = 117
    UnsortedSegmentProdOptions = 118
    UnsortedSegmentMaxOptions = 119
    UnsortedSegmentMinOptions = 120
    UnsortedSegmentSumOptions = 121
    ATan2Options = 122
    SignOptions = 123
    BitcastOptions = 124
    BitwiseXorOptions = 125
    RightShiftOptions = 126


class BuiltinOptions2Type(enum.IntEnum):
    """schema.fbs `union BuiltinOptions2` type tags (Operator.builtin_options_2_type), used by
    StableHLO ops. edgeq bounds-checks these tables but does not decode them."""

    NONE = 0
    StablehloConcatenateOptions = 1
    StablehloBroadcastInDimOptions = 2
    StablehloSliceOptions = 3
    StablehloConvolutionOptions = 4
    StablehloCustomCallOptions = 5
    StablehloReduceOptions = 6
    StablehloScatterOptions = 7
    StablehloCompareOptions = 8
    StablehloDynamicSliceOptions = 9
    StablehloPadOptions = 10
    StablehloIotaOptions = 11
    StablehloDotGeneralOptions = 12
    StablehloReduceWindowOptions = 13
    StablehloSortOptions = 14
    StablehloWhileOptions = 15
    StablehloGatherOptions = 16
    StablehloTransposeOptions = 17
    DilateOptions = 18
    StablehloRngBitGeneratorOptions = 19
    ReduceWindowOptions = 20
    StableHLOCompositeOptions = 21
    StablehloShiftLeftOptions = 22
    StablehloCaseOptions = 23


# --- table slots of the structural tables (the reader and writer both use these) -------------

class Slot:
    """Field slots of the structural tables, from schema.fbs."""

    # Model
    MODEL_VERSION, MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION = 0, 1, 2, 3
    MODEL_BUFFERS, MODEL_METADATA_BUFFER, MODEL_METADATA, MODEL_SIGNATURE_DEFS = 4, 5, 6, 7
    # SubGraph
    SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
    SUBGRAPH_NAME = 4
    # Tensor
    TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
    TENSOR_IS_VARIABLE, TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE, TENSOR_HAS_RANK = 5, 6, 7, 8
    TENSOR_VARIANT_TENSORS, TENSOR_EXTERNAL_BUFFER = 9, 10
    # Operator (builtin_options is a union: type tag in slot 3, table in slot 4)
    OP_OPCODE_INDEX, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE, OP_OPTIONS = 0, 1, 2, 3, 4
    OP_CUSTOM_OPTIONS, OP_CUSTOM_OPTIONS_FORMAT, OP_MUTATING_VARIABLE_INPUTS = 5, 6, 7
    OP_INTERMEDIATES, OP_LARGE_CUSTOM_OPTIONS_OFFSET, OP_LARGE_CUSTOM_OPTIONS_SIZE = 8, 9, 10
    OP_OPTIONS2_TYPE, OP_OPTIONS2, OP_DEBUG_METADATA_INDEX = 11, 12, 13
    # OperatorCode
    OPCODE_DEPRECATED_BUILTIN_CODE, OPCODE_CUSTOM_CODE, OPCODE_VERSION = 0, 1, 2
    OPCODE_BUILTIN_CODE = 3
    # Buffer
    BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
    # QuantizationParameters (details is a union: type tag slot 4, table slot 5)
    QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT = 0, 1, 2, 3
    QUANT_DETAILS_TYPE, QUANT_DETAILS, QUANT_QUANTIZED_DIMENSION = 4, 5, 6
    # SparsityParameters
    SPARSITY_TRAVERSAL_ORDER, SPARSITY_BLOCK_MAP, SPARSITY_DIM_METADATA = 0, 1, 2
    # DimensionMetadata (two SparseIndexVector unions: slots 2+3 and 4+5)
    DIM_FORMAT, DIM_DENSE_SIZE = 0, 1
    DIM_ARRAY_SEGMENTS_TYPE, DIM_ARRAY_SEGMENTS = 2, 3
    DIM_ARRAY_INDICES_TYPE, DIM_ARRAY_INDICES = 4, 5
    # Int32Vector / Uint16Vector / Uint8Vector
    INDEX_VECTOR_VALUES = 0
    # Metadata
    METADATA_NAME, METADATA_BUFFER = 0, 1
    # SignatureDef (slot 3 is the deprecated deprecated_tag)
    SIGNATURE_INPUTS, SIGNATURE_OUTPUTS, SIGNATURE_KEY, SIGNATURE_SUBGRAPH_INDEX = 0, 1, 2, 4
    # TensorMap
    TENSORMAP_NAME, TENSORMAP_TENSOR_INDEX = 0, 1


SCHEMA_VERSION = 3  # Model.version every TFLite runtime expects
FILE_IDENTIFIER = b"TFL3"


# --- builtin options tables ------------------------------------------------------------------

class Field(NamedTuple):
    """One field of an options table.

    kind: "bool", "int8", "uint8", "int16", "int32", "uint32", "int64", "float32" (scalars),
          "int32[]", "float32[]" (vectors, read as tuples) or "string".
    check: what a valid value is, beyond its storage type:
          "positive" (> 0), "nonneg" (>= 0), "finite", "dims" (every entry >= -1),
          "subgraph" (an index into Model.subgraphs), or an IntEnum class (a member's value).
    """

    name: str
    slot: int
    kind: str
    default: Any
    check: Any = None


class OptionsTable(NamedTuple):
    type_id: int  # the BuiltinOptions union tag
    name: str  # the table's name in schema.fbs
    fields: tuple


def _f(name, slot, kind, default, check=None) -> Field:
    return Field(name, slot, kind, default, check)


def _act(slot) -> Field:
    return Field("fused_activation_function", slot, "int8", 0, Activation)


def _pad(slot) -> Field:
    return Field("padding", slot, "int8", 0, Padding)


def _bool(name, slot, default=False) -> Field:
    return Field(name, slot, "bool", default)


def _positive(name, slot, default=0) -> Field:
    """Strides, filter sizes, dilations, block sizes: 0 or less would divide by zero or loop."""
    return Field(name, slot, "int32", default, "positive")


def _ttype(name, slot, default=0) -> Field:
    return Field(name, slot, "int8", default, TensorType)


_T = BuiltinOptionsType
_TABLES = [
    (_T.Conv2DOptions, (
        _pad(0), _positive("stride_w", 1), _positive("stride_h", 2),
        _act(3), _positive("dilation_w_factor", 4, 1),
        _positive("dilation_h_factor", 5, 1), _ttype("quantized_bias_type", 6))),
    (_T.DepthwiseConv2DOptions, (
        _pad(0), _positive("stride_w", 1), _positive("stride_h", 2),
        # TF >= 2.1 ignores depth_multiplier (the filter shape says it), and converters have
        # written 0 there; negative is corrupt.
        _f("depth_multiplier", 3, "int32", 0, "nonneg"), _act(4),
        _positive("dilation_w_factor", 5, 1),
        _positive("dilation_h_factor", 6, 1))),
    (_T.ConcatEmbeddingsOptions, (
        _f("num_channels", 0, "int32", 0, "nonneg"),
        _f("num_columns_per_channel", 1, "int32[]", ()),
        _f("embedding_dim_per_channel", 2, "int32[]", ()))),
    (_T.LSHProjectionOptions, (_f("type", 0, "int8", 0, LSHProjectionType),)),
    (_T.Pool2DOptions, (
        _pad(0), _positive("stride_w", 1), _positive("stride_h", 2),
        _positive("filter_width", 3), _positive("filter_height", 4),
        _act(5))),
    (_T.SVDFOptions, (_f("rank", 0, "int32", 0, "nonneg"), _act(1),
                      _bool("asymmetric_quantize_inputs", 2))),
    (_T.RNNOptions, (_act(0), _bool("asymmetric_quantize_inputs", 1))),
    (_T.FullyConnectedOptions, (
        _act(0), _f("weights_format", 1, "int8", 0, FullyConnectedWeightsFormat),
        _bool("keep_num_dims", 2), _bool("asymmetric_quantize_inputs", 3),
        _ttype("quantized_bias_type", 4))),
    (_T.SoftmaxOptions, (_f("beta", 0, "float32", 0.0, "finite"),)),
    (_T.ConcatenationOptions, (_f("axis", 0, "int32", 0), _act(1))),
    (_T.AddOptions, (_act(0), _bool("pot_scale_int16", 1, True))),
    (_T.L2NormOptions, (_act(0),)),
    (_T.LocalResponseNormalizationOptions, (
        _f("radius", 0, "int32", 0, "nonneg"), _f("bias", 1, "float32", 0.0, "finite"),
        _f("alpha", 2, "float32", 0.0, "finite"), _f("beta", 3, "float32", 0.0, "finite"))),
    (_T.LSTMOptions, (
        _act(0), _f("cell_clip", 1, "float32", 0.0, "finite"),
        _f("proj_clip", 2, "float32", 0.0, "finite"),
        _f("kernel_type", 3, "int8", 0, LSTMKernelType), _bool("asymmetric_quantize_inputs", 4))),
    # Slots 0 and 1 (new_height, new_width) are deprecated but keep their place.
    (_T.ResizeBilinearOptions, (_bool("align_corners", 2), _bool("half_pixel_centers", 3))),
    (_T.CallOptions, (_f("subgraph", 0, "uint32", 0, "subgraph"),)),
    (_T.ReshapeOptions, (_f("new_shape", 0, "int32[]", (), "dims"),)),
    (_T.SkipGramOptions, (_f("ngram_size", 0, "int32", 0, "nonneg"),
                          _f("max_skip_size", 1, "int32", 0, "nonneg"),
                          _bool("include_all_ngrams", 2))),
    (_T.SpaceToDepthOptions, (_positive("block_size", 0),)),
    (_T.EmbeddingLookupSparseOptions, (_f("combiner", 0, "int8", 0, CombinerType),)),
    (_T.MulOptions, (_act(0),)),
    (_T.PadOptions, ()),
    (_T.GatherOptions, (_f("axis", 0, "int32", 0), _f("batch_dims", 1, "int32", 0))),
    (_T.BatchToSpaceNDOptions, ()),
    (_T.SpaceToBatchNDOptions, ()),
    (_T.TransposeOptions, ()),
    (_T.ReducerOptions, (_bool("keep_dims", 0),)),
    (_T.SubOptions, (_act(0), _bool("pot_scale_int16", 1, True))),
    (_T.DivOptions, (_act(0),)),
    (_T.SqueezeOptions, (_f("squeeze_dims", 0, "int32[]", ()),)),
    (_T.SequenceRNNOptions, (_bool("time_major", 0), _act(1),
                             _bool("asymmetric_quantize_inputs", 2))),
    (_T.StridedSliceOptions, (
        _f("begin_mask", 0, "int32", 0), _f("end_mask", 1, "int32", 0),
        _f("ellipsis_mask", 2, "int32", 0), _f("new_axis_mask", 3, "int32", 0),
        _f("shrink_axis_mask", 4, "int32", 0), _bool("offset", 5))),
    (_T.ExpOptions, ()),
    (_T.TopKV2Options, ()),
    (_T.SplitOptions, (_f("num_splits", 0, "int32", 0, "nonneg"),)),
    (_T.LogSoftmaxOptions, ()),
    (_T.CastOptions, (_ttype("in_data_type", 0), _ttype("out_data_type", 1))),
    (_T.DequantizeOptions, ()),
    (_T.MaximumMinimumOptions, ()),
    (_T.ArgMaxOptions, (_ttype("output_type", 0),)),
    (_T.LessOptions, ()),
    (_T.NegOptions, ()),
    (_T.PadV2Options, ()),
    (_T.GreaterOptions, ()),
    (_T.GreaterEqualOptions, ()),
    (_T.LessEqualOptions, ()),
    (_T.SelectOptions, ()),
    (_T.SliceOptions, ()),
    (_T.TransposeConvOptions, (
        _pad(0), _positive("stride_w", 1), _positive("stride_h", 2),
        _act(3), _ttype("quantized_bias_type", 4))),
    (_T.SparseToDenseOptions, (_bool("validate_indices", 0),)),
    (_T.TileOptions, ()),
    (_T.ExpandDimsOptions, ()),
    (_T.EqualOptions, ()),
    (_T.NotEqualOptions, ()),
    (_T.ShapeOptions, (_ttype("out_type", 0),)),
    (_T.PowOptions, ()),
    (_T.ArgMinOptions, (_ttype("output_type", 0),)),
    (_T.FakeQuantOptions, (
        _f("min", 0, "float32", 0.0, "finite"), _f("max", 1, "float32", 0.0, "finite"),
        _f("num_bits", 2, "int32", 0, "nonneg"), _bool("narrow_range", 3))),
    (_T.PackOptions, (_f("values_count", 0, "int32", 0, "nonneg"), _f("axis", 1, "int32", 0))),
    (_T.LogicalOrOptions, ()),
    (_T.OneHotOptions, (_f("axis", 0, "int32", 0),)),
    (_T.LogicalAndOptions, ()),
    (_T.LogicalNotOptions, ()),
    (_T.UnpackOptions, (_f("num", 0, "int32", 0, "nonneg"), _f("axis", 1, "int32", 0))),
    (_T.FloorDivOptions, ()),
    (_T.SquareOptions, ()),
    (_T.ZerosLikeOptions, ()),
    (_T.FillOptions, ()),
    (_T.BidirectionalSequenceLSTMOptions, (
        _act(0), _f("cell_clip", 1, "float32", 0.0, "finite"),
        _f("proj_clip", 2, "float32", 0.0, "finite"), _bool("merge_outputs", 3),
        _bool("time_major", 4, True), _bool("asymmetric_quantize_inputs", 5))),
    (_T.BidirectionalSequenceRNNOptions, (
        _bool("time_major", 0), _act(1), _bool("merge_outputs", 2),
        _bool("asymmetric_quantize_inputs", 3))),
    (_T.UnidirectionalSequenceLSTMOptions, (
        _act(0), _f("cell_clip", 1, "float32", 0.0, "finite"),
        _f("proj_clip", 2, "float32", 0.0, "finite"), _bool("time_major", 3),
        _bool("asymmetric_quantize_inputs", 4), _bool("diagonal_recurrent_tensors", 5))),
    (_T.FloorModOptions, ()),
    (_T.RangeOptions, ()),
    (_T.ResizeNearestNeighborOptions, (_bool("align_corners", 0), _bool("half_pixel_centers", 1))),
    (_T.LeakyReluOptions, (_f("alpha", 0, "float32", 0.0, "finite"),)),
    (_T.SquaredDifferenceOptions, ()),
    (_T.MirrorPadOptions, (_f("mode", 0, "int8", 0, MirrorPadMode),)),
    (_T.AbsOptions, ()),
    (_T.SplitVOptions, (_f("num_splits", 0, "int32", 0, "nonneg"),)),
    (_T.UniqueOptions, (_ttype("idx_out_type", 0, int(TensorType.INT32)),)),
    (_T.ReverseV2Options, ()),
    (_T.AddNOptions, ()),
    (_T.GatherNdOptions, ()),
    (_T.CosOptions, ()),
    (_T.WhereOptions, ()),
    (_T.RankOptions, ()),
    (_T.ReverseSequenceOptions, (_f("seq_dim", 0, "int32", 0), _f("batch_dim", 1, "int32", 0))),
    (_T.MatrixDiagOptions, ()),
    (_T.QuantizeOptions, ()),
    (_T.MatrixSetDiagOptions, ()),
    (_T.HardSwishOptions, ()),
    (_T.IfOptions, (_f("then_subgraph_index", 0, "int32", 0, "subgraph"),
                    _f("else_subgraph_index", 1, "int32", 0, "subgraph"))),
    (_T.WhileOptions, (_f("cond_subgraph_index", 0, "int32", 0, "subgraph"),
                       _f("body_subgraph_index", 1, "int32", 0, "subgraph"))),
    (_T.DepthToSpaceOptions, (_positive("block_size", 0),)),
    (_T.NonMaxSuppressionV4Options, ()),
    (_T.NonMaxSuppressionV5Options, ()),
    (_T.ScatterNdOptions, ()),
    (_T.SelectV2Options, ()),
    (_T.DensifyOptions, ()),
    (_T.SegmentSumOptions, ()),
    (_T.BatchMatMulOptions, (_bool("adj_x", 0), _bool("adj_y", 1),
                             _bool("asymmetric_quantize_inputs", 2))),
    (_T.CumsumOptions, (_bool("exclusive", 0), _bool("reverse", 1))),
    (_T.CallOnceOptions, (_f("init_subgraph_index", 0, "int32", 0, "subgraph"),)),
    (_T.BroadcastToOptions, ()),
    (_T.Rfft2dOptions, ()),
    (_T.Conv3DOptions, (
        _pad(0), _positive("stride_d", 1), _positive("stride_w", 2),
        _positive("stride_h", 3), _act(4),
        _positive("dilation_d_factor", 5, 1),
        _positive("dilation_w_factor", 6, 1),
        _positive("dilation_h_factor", 7, 1))),
    (_T.HashtableOptions, (_f("table_id", 0, "int32", 0), _ttype("key_dtype", 1),
                           _ttype("value_dtype", 2))),
    (_T.HashtableFindOptions, ()),
    (_T.HashtableImportOptions, ()),
    (_T.HashtableSizeOptions, ()),
    (_T.VarHandleOptions, (_f("container", 0, "string", ""), _f("shared_name", 1, "string", ""))),
    (_T.ReadVariableOptions, ()),
    (_T.AssignVariableOptions, ()),
    (_T.RandomOptions, (_f("seed", 0, "int64", 0), _f("seed2", 1, "int64", 0))),
    (_T.BucketizeOptions, (_f("boundaries", 0, "float32[]", ()),)),
    (_T.GeluOptions, (_bool("approximate", 0),)),
    (_T.DynamicUpdateSliceOptions, ()),
    (_T.UnsortedSegmentProdOptions, ()),
    (_T.UnsortedSegmentMaxOptions, ()),
    (_T.UnsortedSegmentMinOptions, ()),
    (_T.UnsortedSegmentSumOptions, ()),
    (_T.ATan2Options, ()),
    (_T.SignOptions, ()),
    (_T.BitcastOptions, ()),
    (_T.BitwiseXorOptions, ()),
    (_T.RightShiftOptions, ()),
]

# union type id -> OptionsTable, for every member of `union BuiltinOptions`.
OPTIONS: dict = {int(t): OptionsTable(int(t), t.name, fields) for t, fields in _TABLES}

_B = BuiltinOp
# builtin operator -> the BuiltinOptions member TFLite pairs with it (the tables LiteRT's
# flatbuffer_conversions parses for each op). Operators absent here take no options.
OPTIONS_FOR_OP: dict = {
    _B.ADD: _T.AddOptions,
    _B.AVERAGE_POOL_2D: _T.Pool2DOptions,
    _B.CONCATENATION: _T.ConcatenationOptions,
    _B.CONV_2D: _T.Conv2DOptions,
    _B.DEPTHWISE_CONV_2D: _T.DepthwiseConv2DOptions,
    _B.DEPTH_TO_SPACE: _T.DepthToSpaceOptions,
    _B.DEQUANTIZE: _T.DequantizeOptions,
    _B.FULLY_CONNECTED: _T.FullyConnectedOptions,
    _B.L2_NORMALIZATION: _T.L2NormOptions,
    _B.L2_POOL_2D: _T.Pool2DOptions,
    _B.LOCAL_RESPONSE_NORMALIZATION: _T.LocalResponseNormalizationOptions,
    _B.LSH_PROJECTION: _T.LSHProjectionOptions,
    _B.LSTM: _T.LSTMOptions,
    _B.MAX_POOL_2D: _T.Pool2DOptions,
    _B.MUL: _T.MulOptions,
    _B.RESHAPE: _T.ReshapeOptions,
    _B.RESIZE_BILINEAR: _T.ResizeBilinearOptions,
    _B.RNN: _T.RNNOptions,
    _B.SOFTMAX: _T.SoftmaxOptions,
    _B.SPACE_TO_DEPTH: _T.SpaceToDepthOptions,
    _B.SVDF: _T.SVDFOptions,
    _B.CONCAT_EMBEDDINGS: _T.ConcatEmbeddingsOptions,
    _B.SKIP_GRAM: _T.SkipGramOptions,
    _B.CALL: _T.CallOptions,
    _B.EMBEDDING_LOOKUP_SPARSE: _T.EmbeddingLookupSparseOptions,
    _B.PAD: _T.PadOptions,
    _B.UNIDIRECTIONAL_SEQUENCE_RNN: _T.SequenceRNNOptions,
    _B.GATHER: _T.GatherOptions,
    _B.BATCH_TO_SPACE_ND: _T.BatchToSpaceNDOptions,
    _B.SPACE_TO_BATCH_ND: _T.SpaceToBatchNDOptions,
    _B.TRANSPOSE: _T.TransposeOptions,
    _B.MEAN: _T.ReducerOptions,
    _B.SUB: _T.SubOptions,
    _B.DIV: _T.DivOptions,
    _B.SQUEEZE: _T.SqueezeOptions,
    _B.UNIDIRECTIONAL_SEQUENCE_LSTM: _T.UnidirectionalSequenceLSTMOptions,
    _B.STRIDED_SLICE: _T.StridedSliceOptions,
    _B.BIDIRECTIONAL_SEQUENCE_RNN: _T.BidirectionalSequenceRNNOptions,
    _B.EXP: _T.ExpOptions,
    _B.TOPK_V2: _T.TopKV2Options,
    _B.SPLIT: _T.SplitOptions,
    _B.LOG_SOFTMAX: _T.LogSoftmaxOptions,
    _B.BIDIRECTIONAL_SEQUENCE_LSTM: _T.BidirectionalSequenceLSTMOptions,
    _B.CAST: _T.CastOptions,
    _B.MAXIMUM: _T.MaximumMinimumOptions,
    _B.ARG_MAX: _T.ArgMaxOptions,
    _B.MINIMUM: _T.MaximumMinimumOptions,
    _B.LESS: _T.LessOptions,
    _B.NEG: _T.NegOptions,
    _B.PADV2: _T.PadV2Options,
    _B.GREATER: _T.GreaterOptions,
    _B.GREATER_EQUAL: _T.GreaterEqualOptions,
    _B.LESS_EQUAL: _T.LessEqualOptions,
    _B.SELECT: _T.SelectOptions,
    _B.SLICE: _T.SliceOptions,
    _B.TRANSPOSE_CONV: _T.TransposeConvOptions,
    _B.SPARSE_TO_DENSE: _T.SparseToDenseOptions,
    _B.TILE: _T.TileOptions,
    _B.EXPAND_DIMS: _T.ExpandDimsOptions,
    _B.EQUAL: _T.EqualOptions,
    _B.NOT_EQUAL: _T.NotEqualOptions,
    _B.SUM: _T.ReducerOptions,
    _B.SHAPE: _T.ShapeOptions,
    _B.POW: _T.PowOptions,
    _B.ARG_MIN: _T.ArgMinOptions,
    _B.FAKE_QUANT: _T.FakeQuantOptions,
    _B.REDUCE_PROD: _T.ReducerOptions,
    _B.REDUCE_MAX: _T.ReducerOptions,
    _B.PACK: _T.PackOptions,
    _B.LOGICAL_OR: _T.LogicalOrOptions,
    _B.ONE_HOT: _T.OneHotOptions,
    _B.LOGICAL_AND: _T.LogicalAndOptions,
    _B.LOGICAL_NOT: _T.LogicalNotOptions,
    _B.UNPACK: _T.UnpackOptions,
    _B.REDUCE_MIN: _T.ReducerOptions,
    _B.FLOOR_DIV: _T.FloorDivOptions,
    _B.REDUCE_ANY: _T.ReducerOptions,
    _B.SQUARE: _T.SquareOptions,
    _B.ZEROS_LIKE: _T.ZerosLikeOptions,
    _B.FILL: _T.FillOptions,
    _B.FLOOR_MOD: _T.FloorModOptions,
    _B.RANGE: _T.RangeOptions,
    _B.RESIZE_NEAREST_NEIGHBOR: _T.ResizeNearestNeighborOptions,
    _B.LEAKY_RELU: _T.LeakyReluOptions,
    _B.SQUARED_DIFFERENCE: _T.SquaredDifferenceOptions,
    _B.MIRROR_PAD: _T.MirrorPadOptions,
    _B.ABS: _T.AbsOptions,
    _B.SPLIT_V: _T.SplitVOptions,
    _B.UNIQUE: _T.UniqueOptions,
    _B.REVERSE_V2: _T.ReverseV2Options,
    _B.ADD_N: _T.AddNOptions,
    _B.GATHER_ND: _T.GatherNdOptions,
    _B.COS: _T.CosOptions,
    _B.WHERE: _T.WhereOptions,
    _B.RANK: _T.RankOptions,
    _B.REVERSE_SEQUENCE: _T.ReverseSequenceOptions,
    _B.MATRIX_DIAG: _T.MatrixDiagOptions,
    _B.QUANTIZE: _T.QuantizeOptions,
    _B.MATRIX_SET_DIAG: _T.MatrixSetDiagOptions,
    _B.HARD_SWISH: _T.HardSwishOptions,
    _B.IF: _T.IfOptions,
    _B.WHILE: _T.WhileOptions,
    _B.NON_MAX_SUPPRESSION_V4: _T.NonMaxSuppressionV4Options,
    _B.NON_MAX_SUPPRESSION_V5: _T.NonMaxSuppressionV5Options,
    _B.SCATTER_ND: _T.ScatterNdOptions,
    _B.SELECT_V2: _T.SelectV2Options,
    _B.DENSIFY: _T.DensifyOptions,
    _B.SEGMENT_SUM: _T.SegmentSumOptions,
    _B.BATCH_MATMUL: _T.BatchMatMulOptions,
    _B.CUMSUM: _T.CumsumOptions,
    _B.CALL_ONCE: _T.CallOnceOptions,
    _B.BROADCAST_TO: _T.BroadcastToOptions,
    _B.RFFT2D: _T.Rfft2dOptions,
    _B.CONV_3D: _T.Conv3DOptions,
    _B.CONV_3D_TRANSPOSE: _T.Conv3DOptions,
    _B.HASHTABLE: _T.HashtableOptions,
    _B.HASHTABLE_FIND: _T.HashtableFindOptions,
    _B.HASHTABLE_IMPORT: _T.HashtableImportOptions,
    _B.HASHTABLE_SIZE: _T.HashtableSizeOptions,
    _B.REDUCE_ALL: _T.ReducerOptions,
    _B.VAR_HANDLE: _T.VarHandleOptions,
    _B.READ_VARIABLE: _T.ReadVariableOptions,
    _B.ASSIGN_VARIABLE: _T.AssignVariableOptions,
    _B.RANDOM_STANDARD_NORMAL: _T.RandomOptions,
    _B.RANDOM_UNIFORM: _T.RandomOptions,
    _B.MULTINOMIAL: _T.RandomOptions,
    _B.BUCKETIZE: _T.BucketizeOptions,
    _B.GELU: _T.GeluOptions,
    _B.DYNAMIC_UPDATE_SLICE: _T.DynamicUpdateSliceOptions,
    _B.UNSORTED_SEGMENT_PROD: _T.UnsortedSegmentProdOptions,
    _B.UNSORTED_SEGMENT_MAX: _T.UnsortedSegmentMaxOptions,
    _B.UNSORTED_SEGMENT_MIN: _T.UnsortedSegmentMinOptions,
    _B.UNSORTED_SEGMENT_SUM: _T.UnsortedSegmentSumOptions,
    _B.ATAN2: _T.ATan2Options,
    _B.SIGN: _T.SignOptions,
    _B.BITCAST: _T.BitcastOptions,
    _B.BITWISE_XOR: _T.BitwiseXorOptions,
    _B.RIGHT_SHIFT: _T.RightShiftOptions,
}


def op_name(code: int, custom_code: Optional[str] = None) -> str:
    """A readable name for an operator code ('CONV_2D', 'custom MyOp', 'builtin 999')."""
    if code == BuiltinOp.CUSTOM and custom_code is not None:
        return f"custom {custom_code}"
    try:
        return BuiltinOp(code).name
    except ValueError:
        return f"builtin {code}"


def options_table_for(op) -> Optional[OptionsTable]:
    """The options table an operator takes, or None."""
    type_id = OPTIONS_FOR_OP.get(op)
    return OPTIONS.get(int(type_id)) if type_id is not None else None
