"""edgeq: a small, fast inference runtime for TensorFlow Lite models on ARM boards."""
from edgeq.errors import InvokeError, ModelError
from edgeq.interpreter import Interpreter, SignatureRunner
from edgeq.ops import supported_ops
from edgeq.runtime.cpu import cpu_info

__version__ = "0.1.0"
__all__ = ["Interpreter", "SignatureRunner", "ModelError", "InvokeError", "supported_ops",
           "cpu_info"]
