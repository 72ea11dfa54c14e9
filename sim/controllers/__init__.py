"""Signal controllers, by registry name.

``fixed`` runs the net's own programs; ``sumo-actuated`` turns those programs into SUMO's built-in
gap-actuated ones as a reference peer. Further controllers register themselves the same way.
"""

from sim.controllers import actuated as _actuated  # noqa: F401  (registers)
from sim.controllers import fixed as _fixed  # noqa: F401  (registers)
from sim.controllers import maxpressure as _maxpressure  # noqa: F401  (registers)
from sim.controllers import sumo_actuated as _sumo_actuated  # noqa: F401  (registers)
from sim.controllers import webster as _webster  # noqa: F401  (registers)
from sim.controllers.base import (
    ControlContext,
    Controller,
    controller_names,
    create_controller,
    register_lazy,
)

register_lazy("adaptive", "sim.controllers.adaptive")  # its kernels need Numba: loaded when used

__all__ = ["ControlContext", "Controller", "controller_names", "create_controller"]
