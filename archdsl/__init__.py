"""archdsl: a declarative language for convolutional networks, and its compiler.

    >>> import archdsl
    >>> net = archdsl.load("specs/alexnet.arch", num_classes=10)
    >>> net.params, net.output_shape
"""

from .diagnostics import Diagnostic, Span, SpecError
from .network import Network, analyse, load, loads

__version__ = "0.1.0"
__all__ = ["load", "loads", "analyse", "Network", "SpecError", "Diagnostic", "Span", "__version__"]
