"""Interactive explorers for the notebooks (ipywidgets), built so tests can drive them without a browser.

Importing this package also gives long training runs a progress bar in notebooks: the engine's
``bpcore.progress`` asks for a display, and this module registers one built from widgets.
"""

from bpcore import progress as _progress
from bpcore.widgets.attention import AttentionExplorer
from bpcore.widgets.batch_size import BatchSizeExplorer
from bpcore.widgets.chain_rule import ChainRuleExplorer
from bpcore.widgets.conv import ConvExplorer
from bpcore.widgets.depth import DepthExplorer
from bpcore.widgets.memory import MemoryExplorer
from bpcore.widgets.optimizers import OptimizerExplorer
from bpcore.widgets.progress import WidgetBar
from bpcore.widgets.stepper import ThreeLayerStepper
from bpcore.widgets.through_time import ThroughTimeExplorer

_progress.register_display(WidgetBar)

__all__ = [
    "AttentionExplorer",
    "BatchSizeExplorer",
    "ChainRuleExplorer",
    "ConvExplorer",
    "DepthExplorer",
    "MemoryExplorer",
    "OptimizerExplorer",
    "ThreeLayerStepper",
    "ThroughTimeExplorer",
    "WidgetBar",
]
