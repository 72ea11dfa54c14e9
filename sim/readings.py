"""One report of every approach lane's detectors, as arrays in a fixed lane order.

Arrays make distorting the reports of hundreds of detectors (sensor profiles) and checking them
for faults (sensor health) a handful of vectorised operations per report.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class Readings:
    """One report of every lane's detectors, as arrays in a fixed lane order (fast to distort).

    ``valid[i]`` is False when lane ``i``'s detectors sent nothing this period (communication
    loss, dead battery): its other entries are then meaningless.
    """

    count: IntArray
    gap_s: FloatArray
    queue: IntArray
    present: IntArray
    occupancy: FloatArray
    buses: IntArray
    emergency: IntArray
    valid: BoolArray

    def copy(self) -> Readings:
        return Readings(**{f.name: getattr(self, f.name).copy() for f in fields(self)})
