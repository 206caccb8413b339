"""archdsl: a declarative language for convolutional networks, and its compiler.

    >>> import archdsl
    >>> net = archdsl.load("specs/alexnet.arch", num_classes=10)
    >>> net.params, net.output_shape
"""

from .diagnostics import Diagnostic, Span, SpecError
from .network import Network, analyse, build, load, loads

__version__ = "0.1.0"
__all__ = ["load", "loads", "analyse", "build", "transfer_weights", "Network", "SpecError",
           "Diagnostic", "Span", "__version__"]


def __getattr__(name):
    # The torch side is imported on first use only: checking a spec never loads torch.
    if name == "transfer_weights":
        from .transfer import transfer_weights

        return transfer_weights
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")


def load_ipython_extension(ipython):
    """`%load_ext archdsl` in IPython or Jupyter: the `%%arch [NAME]` cell magic."""
    from .notebook import load_ipython_extension as load

    load(ipython)
